// The admin API from the browser. The token lives in sessionStorage only (this tab, until it is
// closed or the user logs out) and is sent as "Authorization: Bearer"; it never goes into a URL.

const kTokenKey = 'airlock.token';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function token() {
  return sessionStorage.getItem(kTokenKey);
}

export function setToken(value) {
  sessionStorage.setItem(kTokenKey, value);
}

export function clearToken() {
  sessionStorage.removeItem(kTokenKey);
}

// Called with the ApiError of any 401 (the token is unknown, revoked or expired).
let unauthorizedHandler = () => {};
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

// One path segment, encoded (app ids, versions and device ids come from the server).
export function seg(value) {
  return encodeURIComponent(String(value));
}

// method, path ("/api/v1/..."), optional JSON body. Resolves to the parsed JSON answer; rejects with
// an ApiError carrying the server's {"error", "message"} for any non-2xx answer.
export async function api(method, path, body) {
  const headers = {Accept: 'application/json'};
  const t = token();
  if (t) headers.Authorization = 'Bearer ' + t;
  const init = {method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error'};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network', 'cannot reach the server: ' + e.message);
  }
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      data = null;
    }
  }
  if (!response.ok) {
    const code = data && typeof data.error === 'string' ? data.error : 'http_' + response.status;
    const message = data && typeof data.message === 'string' ? data.message :
                                                               'HTTP ' + response.status;
    const error = new ApiError(response.status, code, message);
    if (response.status === 401) unauthorizedHandler(error);
    throw error;
  }
  return data;
}
