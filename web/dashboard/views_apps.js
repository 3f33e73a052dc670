// Pages of one app: channels (rollout, pause/resume), releases, a release's funnel and adoption,
// approvals, devices and their events. Every server string goes in as text (dom.js).
import {api, seg} from './api.js';
import {el, percent, pill, table, when} from './dom.js';
import {adoptionPlot} from './plot.js';

function appPath(app) {
  return '/api/v1/apps/' + seg(app);
}

function appHash(app, rest) {
  return '#/apps/' + seg(app) + (rest || '');
}

// The app's heading and its tabs.
function header(main, app, current) {
  main.append(el('h2', {id: 'app-title'}, app));
  const tabs = [['', 'Channels'], ['/releases', 'Releases'], ['/approvals', 'Approvals'],
    ['/devices', 'Devices']];
  main.append(el('nav', {class: 'tabs'}, tabs.map(([rest, title]) =>
    el('a', {href: appHash(app, rest), class: rest === current ? 'current' : null}, title))));
}

export async function appList(main) {
  const data = await api('GET', '/api/v1/apps');
  main.append(el('h2', null, 'Apps'));
  const list = data.apps || [];
  if (list.length === 0) {
    main.append(el('p', {class: 'muted'}, 'No apps yet (airlock app create).'));
    return;
  }
  main.append(table([{title: 'App'}, {title: 'Name'}, {title: 'Created'}],
      list.map((a) => [el('a', {href: appHash(a.app_id)}, a.app_id), a.display_name || '',
        when(a.created_at)]),
      (i) => ({data: {app: list[i].app_id}})));
}

// --- channels ---

export async function channels(main, [app], ctx) {
  header(main, app, '');
  const data = await api('GET', appPath(app) + '/channels');
  const list = data.channels || [];
  if (list.length === 0) {
    main.append(el('p', {class: 'muted'}, 'No channels yet (airlock channel create).'));
    return;
  }
  const change = async (what, method, path, body) => {
    try {
      const c = await api(method, path, body);
      if (c && c.status === 'pending_approval' && c.approval) {
        // A channel with four-eyes approval keeps its state until a second principal approves.
        ctx.status(`Waiting for approval (request ${c.approval.id}): ${what}.`);
      } else {
        ctx.status(`Channel ${c.name}: ${what}.`);
      }
      await ctx.refresh();
    } catch (e) {
      ctx.error(e);
    }
  };
  const rows = list.map((c) => {
    const base = appPath(app) + '/channels/' + seg(c.name);
    const pause = c.paused ?
      el('button', {type: 'button', data: {action: 'resume'}}, 'Resume') :
      el('button', {type: 'button', class: 'danger', data: {action: 'pause'}}, 'Pause');
    pause.addEventListener('click', () => c.paused ?
      change('rollout resumed', 'POST', base + '/resume') :
      change('rollout paused', 'POST', base + '/pause'));
    const percentInput = el('input', {type: 'number', min: 0, max: 100, step: 1,
      value: c.rollout_percent, 'aria-label': `Rollout percent of ${c.name}`,
      data: {field: 'rollout'}});
    const setRollout = el('button', {type: 'button', data: {action: 'rollout'}}, 'Set rollout');
    setRollout.addEventListener('click', () => {
      const n = Number(percentInput.value);
      if (!Number.isInteger(n) || n < 0 || n > 100) {
        ctx.status('The rollout is a whole percent, 0 to 100.', true);
        return;
      }
      change(`rollout set to ${n} %`, 'PUT', base + '/rollout', {percent: n});
    });
    const current = c.current_version ?
      el('a', {href: appHash(app, '/releases/' + seg(c.current_version))}, c.current_version) :
      el('span', {class: 'muted'}, 'none');
    const fourEyes = c.approval_required ?
      el('div', {class: 'muted', data: {field: 'approval'}},
          `four-eyes: publish, rollout above ${c.approval_rollout_above} %`) : null;
    return [
      [c.name + (c.default ? ' (default)' : ''), fourEyes],
      [current, c.rolled_back ? el('span', {class: 'muted'}, ' (rolled back)') : null],
      el('span', {data: {field: 'percent'}}, `${c.rollout_percent} %`),
      pill(c.paused ? 'paused' : 'active'),
      el('div', {class: 'actions'}, pause, percentInput, setRollout),
    ];
  });
  main.append(table([{title: 'Channel'}, {title: 'Current release'}, {title: 'Rollout', num: true},
    {title: 'State'}, {title: 'Actions'}], rows,
  (i) => ({data: {channel: list[i].name, paused: list[i].paused}})));
}

// --- releases ---

export async function releases(main, [app]) {
  header(main, app, '/releases');
  const data = await api('GET', appPath(app) + '/releases');
  const list = data.releases || [];
  if (list.length === 0) {
    main.append(el('p', {class: 'muted'}, 'No releases yet (airlock release publish).'));
    return;
  }
  main.append(table([{title: 'Version'}, {title: 'Published'}, {title: 'Encryption'},
    {title: 'Format'}, {title: 'Size', num: true}, {title: 'SHA-256', cls: 'wrap'}],
  list.map((r) => [el('a', {href: appHash(app, '/releases/' + seg(r.version))}, r.version),
    when(r.created_at), r.encryption, r.format || '—', r.length, r.sha256]),
  (i) => ({data: {version: list[i].version}})));
}

const kStages = ['offered', 'downloaded', 'verified', 'installed', 'confirmed', 'failed',
  'rolled_back'];

function funnel(f) {
  const counts = kStages.map((s) => Number((f || {})[s] || 0));
  const top = Math.max(1, ...counts);
  const dl = el('dl', {class: 'funnel', id: 'funnel'});
  kStages.forEach((stage, i) => {
    const width = (100 * counts[i] / top).toFixed(2);
    const bad = stage === 'failed' || stage === 'rolled_back';
    dl.append(el('dt', null, stage.replace('_', ' ')),
        el('dd', {data: {stage}}, String(counts[i])),
        el('div', null, svgBar(width, bad)));
  });
  return dl;
}

function svgBar(width, bad) {
  const ns = 'http://www.w3.org/2000/svg';
  const s = document.createElementNS(ns, 'svg');
  s.setAttribute('viewBox', '0 0 100 10');
  s.setAttribute('preserveAspectRatio', 'none');
  const r = document.createElementNS(ns, 'rect');
  r.setAttribute('class', bad ? 'bar bad' : 'bar');
  r.setAttribute('x', '0');
  r.setAttribute('y', '0');
  r.setAttribute('height', '10');
  r.setAttribute('width', width);
  s.append(r);
  return s;
}

function card(label, value, field) {
  return el('dl', {class: 'card'}, el('dt', null, label), el('dd', {data: {field}}, value));
}

export async function release(main, [app, version]) {
  header(main, app, '/releases');
  const stats = await api('GET', appPath(app) + '/releases/' + seg(version) + '/stats');
  main.append(el('h3', {id: 'release-title'}, `Release ${stats.version}`));
  main.append(el('p', {class: 'muted'}, `Published ${when(stats.published_at)}; offered now on `,
      (stats.channels || []).length ? (stats.channels || []).join(', ') : 'no channel'));
  const adoption = stats.adoption || {};
  main.append(el('div', {class: 'cards'},
      card('Success rate', percent(stats.success_rate), 'success_rate'),
      card('Active devices', String(adoption.active_devices ?? 0), 'active_devices'),
      card('On this release', String(adoption.on_release ?? 0), 'on_release'),
      card('Adoption', percent(adoption.share), 'share'),
      card('Adoption within 24 h', percent(adoption.within_24h), 'within_24h')));
  main.append(el('h3', null, 'Funnel'));
  main.append(funnel(stats.funnel));
  const reasons = Object.entries(stats.failed_by_reason || {});
  main.append(el('h3', null, 'Failures by reason'));
  if (reasons.length === 0) {
    main.append(el('p', {class: 'muted', id: 'failed-by-reason'}, 'No failures reported.'));
  } else {
    const t = table([{title: 'Reason'}, {title: 'Devices', num: true}],
        reasons.map(([reason, n]) => [reason, String(n)]),
        (i) => ({data: {reason: reasons[i][0]}}));
    t.id = 'failed-by-reason';
    main.append(t);
  }
  main.append(el('h3', null, 'Adoption over time'));
  main.append(adoptionPlot(stats.adoption_series, stats.published_at));
}

// --- approvals ---

export async function approvals(main, [app], ctx) {
  header(main, app, '/approvals');
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const all = params.get('all') === '1';
  const data = await api('GET', appPath(app) + '/approvals' + (all ? '' : '?status=pending'));
  const list = data.approvals || [];
  main.append(el('p', null, all ? 'All approval requests. ' : 'Pending approval requests. ',
      el('a', {href: appHash(app, '/approvals' + (all ? '' : '?all=1'))},
          all ? 'Show pending only' : 'Show all')));
  if (list.length === 0) {
    main.append(el('p', {class: 'muted', id: 'no-approvals'}, 'Nothing waits for approval.'));
    return;
  }
  const decide = async (a, verb) => {
    try {
      await api('POST', appPath(app) + '/approvals/' + seg(a.id) + '/' + verb);
      ctx.status(`Request ${a.id} ${verb === 'approve' ? 'approved' : 'rejected'}.`);
      await ctx.refresh();
    } catch (e) {
      ctx.error(e);
    }
  };
  main.append(table([{title: 'Id'}, {title: 'Channel'}, {title: 'Change'},
    {title: 'Requested by'}, {title: 'Requested'}, {title: 'Status'}, {title: 'Decided'},
    {title: 'Actions'}],
  list.map((a) => {
    const actions = el('div', {class: 'actions'});
    if (a.status === 'pending') {
      const approve = el('button', {type: 'button', data: {action: 'approve'}}, 'Approve');
      approve.addEventListener('click', () => decide(a, 'approve'));
      const reject = el('button', {type: 'button', class: 'danger', data: {action: 'reject'}},
          'Reject');
      reject.addEventListener('click', () => decide(a, 'reject'));
      actions.append(approve, reject);
    }
    return [String(a.id), a.channel, approvalChange(a), a.requested_by, when(a.requested_at),
      pill(a.status), a.decided_by ? `${a.decided_by}, ${when(a.decided_at)}` : '—', actions];
  }),
  (i) => ({data: {approval: list[i].id, status: list[i].status}})));
}

// What an approval would change, in words.
function approvalChange(a) {
  const has = (v) => v !== null && v !== undefined;
  if (a.kind === 'publish') return `publish ${a.version}`;
  if (a.kind === 'rollout') return `rollout to ${a.rollout_percent} %`;
  if (a.kind === 'policy') {
    const parts = [];
    if (has(a.approval_required)) {
      parts.push(a.approval_required ? 'approval required' : 'approval not required');
    }
    if (has(a.approval_rollout_above)) parts.push(`rollouts above ${a.approval_rollout_above} %`);
    return 'approval policy: ' + (parts.join(', ') || 'changed');
  }
  return [a.kind, has(a.version) ? a.version : null,
    has(a.rollout_percent) ? `${a.rollout_percent} %` : null].filter(Boolean).join(' ');
}

// --- devices ---

export async function devices(main, [app]) {
  header(main, app, '/devices');
  const data = await api('GET', appPath(app) + '/devices?limit=1000');
  const list = data.devices || [];
  if (list.length === 0) {
    main.append(el('p', {class: 'muted'}, 'No devices enrolled yet.'));
    return;
  }
  main.append(table([{title: 'Device'}, {title: 'Platform'}, {title: 'Status'},
    {title: 'Channel override'}, {title: 'Last seen'}],
  list.map((d) => [el('a', {href: appHash(app, '/devices/' + seg(d.device_id))}, d.device_id),
    d.platform, pill(d.status), d.channel_override || '—', when(d.last_seen)]),
  (i) => ({data: {device: list[i].device_id}})));
}

export async function device(main, [app, id]) {
  header(main, app, '/devices');
  main.append(el('h3', {id: 'device-title'}, `Device ${id}`));
  const data = await api('GET', appPath(app) + '/devices/' + seg(id) + '/events');
  const list = data.events || [];
  if (list.length === 0) {
    main.append(el('p', {class: 'muted'}, 'This device has reported nothing yet.'));
    return;
  }
  const t = table([{title: '#', num: true}, {title: 'Version'}, {title: 'Event'},
    {title: 'Reason'}, {title: 'Detail', cls: 'wrap'}, {title: 'Occurred'}, {title: 'Received'}],
  list.map((e) => [String(e.seq), e.version, e.kind, e.reason_code || '—', e.detail || '',
    when(e.occurred_at), when(e.received_at)]),
  (i) => ({data: {event: list[i].seq}}));
  t.id = 'events';
  main.append(t);
}
