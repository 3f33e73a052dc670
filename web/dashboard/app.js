// The dashboard's shell: login, logout, the hash router and the status line. The pages are in
// views_apps.js (apps, channels, releases, approvals, devices) and views_ops.js (alerts, audit log,
// keys).
import {ApiError, api, clearToken, onUnauthorized, setToken, token} from './api.js';
import {clear, el} from './dom.js';
import * as apps from './views_apps.js';
import * as ops from './views_ops.js';

const $ = (id) => document.getElementById(id);

// [pattern, view]: a view is async (main, params, ctx) and fills `main`.
const kRoutes = [
  [/^\/apps$/, apps.appList],
  [/^\/apps\/([^/]+)$/, apps.channels],
  [/^\/apps\/([^/]+)\/releases$/, apps.releases],
  [/^\/apps\/([^/]+)\/releases\/([^/]+)$/, apps.release],
  [/^\/apps\/([^/]+)\/approvals$/, apps.approvals],
  [/^\/apps\/([^/]+)\/devices$/, apps.devices],
  [/^\/apps\/([^/]+)\/devices\/([^/]+)$/, apps.device],
  [/^\/alerts$/, ops.alerts],
  [/^\/audit$/, ops.audit],
  [/^\/keys$/, ops.keys],
];

// The status line: what the last action did, or why it failed.
function status(text, isError) {
  const line = $('status');
  line.textContent = text || '';
  line.classList.toggle('error', Boolean(isError));
}

// What the views use besides the DOM: the status line and a re-render of the current page.
const ctx = {
  status,
  error(e) {
    if (e instanceof ApiError) {
      status(`${e.code}: ${e.message}`, true);
    } else {
      status(String(e && e.message ? e.message : e), true);
    }
  },
  refresh: () => render(),
};

function showLogin(message) {
  $('nav').hidden = true;
  $('view').hidden = true;
  clear($('view'));
  status('');
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('token').value = '';
  $('token').focus();
}

let renderSerial = 0;

async function render() {
  if (!token()) {
    showLogin('');
    return;
  }
  $('login').hidden = true;
  $('nav').hidden = false;
  const view = $('view');
  view.hidden = false;
  // "#/alerts?status=open": the part after '?' is the page's own filter (views read it).
  const path = (location.hash || '#/apps').slice(1).split('?')[0];
  const serial = ++renderSerial;
  for (const [pattern, fn] of kRoutes) {
    const m = pattern.exec(path);
    if (!m) continue;
    const params = m.slice(1).map((p) => {
      try {
        return decodeURIComponent(p);
      } catch (e) {
        return p;
      }
    });
    const main = el('div', {class: 'page'});
    try {
      await fn(main, params, ctx);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;  // showLogin already ran
      main.append(el('p', {class: 'error', id: 'page-error'},
          e instanceof ApiError ? `${e.code}: ${e.message}` : String(e)));
    }
    if (serial !== renderSerial) return;  // a later navigation won
    clear(view);
    view.append(main);
    view.dataset.page = path;
    return;
  }
  clear(view);
  view.append(el('p', {class: 'error'}, 'No such page.'));
}

async function login(event) {
  event.preventDefault();
  const value = $('token').value.trim();
  $('token').value = '';
  if (!value) return;
  setToken(value);
  try {
    // Any answer but 401 means the server knows the token (a 403 only says what it may not read).
    await api('GET', '/api/v1/apps');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;  // onUnauthorized showed the form
    if (!(e instanceof ApiError) || e.status !== 403) {
      clearToken();
      showLogin(e.message);
      return;
    }
  }
  status('Logged in.');
  if (!location.hash) location.hash = '#/apps';
  await render();
}

function logout() {
  clearToken();
  history.replaceState(null, '', location.pathname);
  showLogin('Logged out.');
}

onUnauthorized((e) => {
  clearToken();
  showLogin(`${e.code}: ${e.message}`);
});

$('login-form').addEventListener('submit', login);
$('logout').addEventListener('click', logout);
window.addEventListener('hashchange', () => {
  status('');
  render();
});
render();
