// The dashboard in Debian's headless Chromium, driven by playwright-core (dashboard_test.sh sets
// the scene and the DASH_* variables). Prints "ok ..." per check, "FAIL ..." per failure; exit 1 on
// any failure. No sleeps: every step waits for a selector, a response or a page condition.
'use strict';
const fs = require('fs');
const {chromium} = require('playwright-core');

const env = (name) => {
  const v = process.env[name];
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};
const server = env('DASH_SERVER');
const token = env('DASH_TOKEN');
const app = env('DASH_APP');
const version = env('DASH_VERSION');
const xss = env('DASH_XSS');
const stats = JSON.parse(fs.readFileSync(env('DASH_STATS'), 'utf8'));
const evilDevice = env('DASH_EVIL_DEVICE');
const alertId = env('DASH_ALERT');
const approver = env('DASH_APPROVER');
const kCsp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

let failures = 0;
function check(cond, what, detail) {
  if (cond) {
    console.log('ok ' + what);
  } else {
    failures++;
    console.log('FAIL ' + what + (detail === undefined ? '' : ': ' + JSON.stringify(detail)));
  }
}

// What the page shows as a share (dom.js percent).
function percent(x) {
  return x === null || x === undefined ? '—' : (Number(x) * 100).toFixed(1) + ' %';
}

async function main() {
  const browser = await chromium.launch({executablePath: env('DASH_CHROMIUM'), headless: true});
  const context = await browser.newContext();  // the page's CSP is enforced (no bypassCSP)
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const requests = [];
  const pageErrors = [];
  page.on('request', (r) => requests.push(r.url()));
  // Answers >= 400 the test does not provoke itself (the wrong token's 401) are errors.
  const badAnswers = [];
  page.on('response', (r) => {
    // 401: the wrong token; 403 on .../approve: the owner's self-approval, both provoked below.
    const provoked = r.status() === 401 || (r.status() === 403 && /\/approvals\/1\/approve$/.test(r.url()));
    if (r.status() >= 400 && !provoked) badAnswers.push(r.status() + ' ' + r.url());
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    // The browser logs every answer >= 400 as a console error; those are in badAnswers.
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) pageErrors.push(m.text());
  });
  // Any policy violation (an inline handler or a load the policy refuses) is recorded.
  await page.addInitScript(() => {
    window.__violations = [];
    document.addEventListener('securitypolicyviolation',
        (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
  });

  // ---- the page and its headers ----
  const response = await page.goto(server + '/dashboard/');
  const headers = response.headers();
  check(response.status() === 200, 'GET /dashboard/ is 200', response.status());
  check(headers['content-security-policy'] === kCsp, 'the page carries the strict policy',
      headers['content-security-policy']);
  check(headers['x-content-type-options'] === 'nosniff', 'nosniff');
  check(headers['referrer-policy'] === 'no-referrer', 'no-referrer');
  check(headers['cache-control'] === 'no-store', 'index.html is no-store');
  await page.waitForSelector('#login-form', {state: 'visible'});

  // ---- a wrong token: the server's message, still logged out ----
  await page.fill('#token', 'alk_' + '0'.repeat(64));
  await page.click('#login-button');
  await page.waitForFunction(() => document.getElementById('login-error').textContent !== '');
  const loginError = await page.textContent('#login-error');
  check(loginError === 'unauthorized: unknown, revoked or expired token',
      'a wrong token shows the server\'s error', loginError);
  check(await page.isVisible('#login-form') && !(await page.isVisible('#nav')),
      'a wrong token stays on the login form');
  check(await page.evaluate(() => sessionStorage.length === 0),
      'a refused token is not kept');

  // ---- the right token ----
  await page.fill('#token', token);
  await page.click('#login-button');
  await page.waitForSelector(`tr[data-app="${app}"] a`);
  check(true, 'logged in: the app list shows the app');
  const stored = await page.evaluate(() => ({
    session: sessionStorage.getItem('airlock.token'),
    local: localStorage.length,
  }));
  check(stored.session === token, 'the token is in sessionStorage');
  check(stored.local === 0, 'nothing is in localStorage', stored.local);

  // ---- the release page: the funnel the server computes, the adoption plot ----
  await page.click(`tr[data-app="${app}"] a`);
  await page.waitForSelector('tr[data-channel="production"]');
  await page.click('.tabs a:has-text("Releases")');
  await page.waitForSelector(`tr[data-version="${version}"] a`);
  await page.click(`tr[data-version="${version}"] a`);
  await page.waitForSelector('#funnel');
  const shown = await page.$$eval('#funnel dd[data-stage]',
      (dds) => Object.fromEntries(dds.map((dd) => [dd.dataset.stage, dd.textContent])));
  for (const stage of ['offered', 'downloaded', 'verified', 'installed', 'confirmed', 'failed',
    'rolled_back']) {
    check(shown[stage] === String(stats.funnel[stage]),
        `funnel ${stage} shows the server's ${stats.funnel[stage]}`, shown[stage]);
  }
  const rate = await page.textContent('dd[data-field="success_rate"]');
  check(rate === percent(stats.success_rate), 'the success rate is the server\'s', rate);
  const share = await page.textContent('dd[data-field="share"]');
  check(share === percent(stats.adoption.share), 'the adoption share is the server\'s', share);
  const reasonRow = await page.$('#failed-by-reason tr[data-reason="hash_mismatch"] td.num');
  check(reasonRow !== null &&
      (await reasonRow.textContent()) === String(stats.failed_by_reason.hash_mismatch),
  'failures by reason show hash_mismatch with the server\'s count');
  const plot = await page.$('svg#adoption-plot');
  check(plot !== null, 'the adoption plot is an inline SVG');
  const points = await page.$$eval('svg#adoption-plot circle.point', (c) => c.length);
  check(points === stats.adoption_series.length,
      `the plot has one point per series entry (${stats.adoption_series.length})`, points);

  // ---- pause the rollout from the channel page ----
  await page.click('.tabs a:has-text("Channels")');
  const row = 'tr[data-channel="production"]';
  await page.waitForSelector(`${row}[data-paused="false"] button[data-action="pause"]`);
  const [pauseResponse] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/channels/production/pause')),
    page.click(`${row} button[data-action="pause"]`),
  ]);
  check(pauseResponse.status() === 200, 'POST .../pause answered 200', pauseResponse.status());
  await page.waitForSelector(`${row}[data-paused="true"] button[data-action="resume"]`);
  check((await page.textContent('#status')) === 'Channel production: rollout paused.',
      'the page says the rollout is paused');

  // ---- hostile text: a device's event detail, the audit log, an alert's summary ----
  await page.goto(`${server}/dashboard/#/apps/${app}/devices/${evilDevice}`);
  await page.waitForSelector('#events');
  const details = await page.$$eval('#events td', (tds) => tds.map((td) => td.textContent));
  check(details.includes(xss), 'the device\'s HTML detail is shown as text', details);

  await page.click('nav#nav a:has-text("Audit log")');
  await page.waitForSelector('#audit');
  const audit = await page.$$eval('#audit td', (tds) => tds.map((td) => td.textContent));
  check(audit.some((t) => t.includes(xss)), 'the HTML request path in the audit log is text');

  await page.click('nav#nav a:has-text("Alerts")');
  const alertRow = `tr[data-alert="${alertId}"]`;
  await page.waitForSelector(alertRow);
  const summary = await page.$$eval(`${alertRow} td`, (tds) => tds.map((td) => td.textContent));
  check(summary.some((t) => t.endsWith(xss)), 'the alert\'s HTML summary is text', summary);
  check(await page.$$eval('#view img', (imgs) => imgs.length) === 0,
      'no img element was made from any of it');

  // ---- acknowledge the alert ----
  await page.waitForSelector(`${alertRow}[data-status="open"] button[data-action="ack"]`);
  const [ackResponse] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith(`/alerts/${alertId}/ack`)),
    page.click(`${alertRow} button[data-action="ack"]`),
  ]);
  check(ackResponse.status() === 200, 'POST .../ack answered 200', ackResponse.status());
  await page.waitForSelector(`${alertRow}[data-status="acknowledged"]`);
  check(true, 'the alert shows acknowledged');

  // ---- four-eyes: the owner minted the requester's token, so its approval is refused ----
  await page.goto(`${server}/dashboard/#/apps/${app}/approvals`);
  const pending = 'tr[data-approval="1"][data-status="pending"]';
  await page.waitForSelector(`${pending} button[data-action="approve"]`);
  const change = await page.textContent(`${pending} td:nth-child(3)`);
  check(change === 'publish 1.2.0', 'the pending request shows its change', change);
  const [selfResponse] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/approvals/1/approve')),
    page.click(`${pending} button[data-action="approve"]`),
  ]);
  check(selfResponse.status() === 403, 'the owner\'s approval is refused (403)', selfResponse.status());
  await page.waitForFunction(() => document.getElementById('status').textContent !== '');
  const refusal = await page.textContent('#status');
  check(/^self_approval: approval 1 was requested by ci; a second principal must approve it/.test(refusal),
      'the page shows the server\'s self_approval message', refusal);
  check(await page.$(pending) !== null, 'the request is still pending');

  // ---- keys ----
  await page.click('nav#nav a:has-text("Keys")');
  await page.waitForSelector('#keys');
  const snapshotState = await page.getAttribute(`tr[data-key="${app}.snapshot"]`, 'data-state');
  check(snapshotState === 'active', 'the keys page lists the app\'s snapshot key, active',
      snapshotState);
  const used = await page.textContent(`tr[data-key="${app}.snapshot"] td:last-child`);
  check(/ \(sign by airlockd\)$/.test(used), 'the snapshot key shows its last signing', used);

  // ---- nothing ran, nothing loaded, the token stayed out of URLs ----
  check(await page.evaluate(() => window.__pwned === undefined), 'no hostile script ran');
  const violations = await page.evaluate(() => window.__violations);
  check(violations.length === 0, 'no content-security-policy violation', violations);
  const strays = requests.filter((u) => !u.startsWith(server + '/'));
  check(strays.length === 0, 'every request went to airlockd itself', strays);
  const imgs = requests.filter((u) => /\/x$/.test(u));
  check(imgs.length === 0, 'no hostile image was requested', imgs);
  const leaks = requests.filter((u) => u.includes(token));
  check(leaks.length === 0, 'the token is in no URL', leaks);
  check(!page.url().includes(token), 'the token is not in the page\'s URL');
  check(pageErrors.length === 0, 'no script error', pageErrors);
  check(badAnswers.length === 0, 'no request failed', badAnswers);

  // ---- log out ----
  await page.click('#logout');
  await page.waitForSelector('#login-form', {state: 'visible'});
  check(await page.evaluate(() => sessionStorage.length === 0), 'logging out forgets the token');
  check(await page.$$eval('#view *', (e) => e.length) === 0, 'logging out clears the page');

  // ---- a second principal approves ----
  await page.fill('#token', approver);
  await page.click('#login-button');
  await page.waitForSelector('tr[data-app]');
  await page.goto(`${server}/dashboard/#/apps/${app}/approvals`);
  await page.waitForSelector(`${pending} button[data-action="approve"]`);
  const [approveResponse] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/approvals/1/approve')),
    page.click(`${pending} button[data-action="approve"]`),
  ]);
  check(approveResponse.status() === 200, 'a second principal\'s approval is 200',
      approveResponse.status());
  await page.waitForSelector('#no-approvals');
  check((await page.textContent('#status')) === 'Request 1 approved.',
      'the page says the request was approved');
  await browser.close();
}

main().then(() => {
  console.log(failures === 0 ? 'browser: all checks passed' : `browser: ${failures} failed`);
  process.exit(failures === 0 ? 0 : 1);
}, (e) => {
  console.log('FAIL the browser test stopped: ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
