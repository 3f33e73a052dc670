// Server-wide pages: alerts (ack/resolve), the audit log, the keys of the server's vault.
import {api, seg} from './api.js';
import {el, pill, table, when} from './dom.js';

export async function alerts(main, _params, ctx) {
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const status = params.get('status') || '';
  main.append(el('h2', null, 'Alerts'));
  const filter = el('select', {id: 'alert-status', 'aria-label': 'Show alerts'},
      ['', 'open', 'acknowledged', 'resolved'].map((s) =>
        el('option', {value: s, selected: s === status}, s || 'all')));
  filter.addEventListener('change', () => {
    location.hash = '#/alerts' + (filter.value ? '?status=' + seg(filter.value) : '');
  });
  main.append(el('p', null, 'Show ', filter));
  const data = await api('GET', '/api/v1/alerts?limit=200' +
      (status ? '&status=' + seg(status) : ''));
  const list = data.alerts || [];
  if (list.length === 0) {
    main.append(el('p', {class: 'muted', id: 'no-alerts'}, 'No alerts.'));
    return;
  }
  const change = async (a, verb) => {
    try {
      await api('POST', '/api/v1/alerts/' + seg(a.id) + '/' + verb, {});
      ctx.status(`Alert ${a.id} ${verb === 'ack' ? 'acknowledged' : 'resolved'}.`);
      await ctx.refresh();
    } catch (e) {
      ctx.error(e);
    }
  };
  main.append(table([{title: 'Id', num: true}, {title: 'Level'}, {title: 'Rule'},
    {title: 'Summary', cls: 'wrap'}, {title: 'App / key'}, {title: 'Action'}, {title: 'Raised'},
    {title: 'Status'}, {title: 'Actions'}],
  list.map((a) => {
    const actions = el('div', {class: 'actions'});
    if (a.status === 'open') {
      const ack = el('button', {type: 'button', data: {action: 'ack'}}, 'Acknowledge');
      ack.addEventListener('click', () => change(a, 'ack'));
      actions.append(ack);
    }
    if (a.status !== 'resolved') {
      const resolve = el('button', {type: 'button', data: {action: 'resolve'}}, 'Resolve');
      resolve.addEventListener('click', () => change(a, 'resolve'));
      actions.append(resolve);
    }
    const action = a.action && a.action !== 'none' ?
      [a.action, ' ', pill(a.action_state), a.action_result ?
        el('div', {class: 'muted'}, a.action_result) : null] : '—';
    return [String(a.id), pill(a.level), a.rule, a.summary, [a.app_id || '', a.key_name ?
      el('div', {class: 'muted'}, a.key_name) : null], action, when(a.created_at),
    pill(a.status), actions];
  }),
  (i) => ({data: {alert: list[i].id, status: list[i].status}})));
}

export async function audit(main) {
  main.append(el('h2', null, 'Audit log'));
  const data = await api('GET', '/api/v1/audit?limit=500');
  const list = (data.records || []).slice().reverse();  // newest first
  main.append(el('p', {class: 'muted'}, 'The newest 500 records of the server vault\'s usage log, ' +
      'newest first. Verify the chain with airlock audit verify.'));
  if (list.length === 0) {
    main.append(el('p', {class: 'muted'}, 'The log is empty.'));
    return;
  }
  const t = table([{title: '#', num: true}, {title: 'Time'}, {title: 'Actor'},
    {title: 'Operation'}, {title: 'Key'}, {title: 'Result'}, {title: 'Source'},
    {title: 'Details', cls: 'wrap'}],
  list.map((r) => [String(r.seq), when(r.time), r.actor, r.operation, r.key_name || '—',
    [pill(r.result), r.result_reason ? el('div', {class: 'muted'}, r.result_reason) : null],
    r.source, r.details]),
  (i) => ({data: {seq: list[i].seq}}));
  t.id = 'audit';
  main.append(t);
}

export async function keys(main) {
  main.append(el('h2', null, 'Keys of the server vault'));
  const data = await api('GET', '/api/v1/keys');
  const list = data.keys || [];
  if (list.length === 0) {
    main.append(el('p', {class: 'muted'}, 'The vault holds no keys yet.'));
    return;
  }
  const t = table([{title: 'Key'}, {title: 'Purpose'}, {title: 'Algorithm'}, {title: 'State'},
    {title: 'Created'}, {title: 'State changed'}, {title: 'Last used'}],
  list.map((k) => [k.name, k.purpose, k.algorithm, pill(k.state), when(k.created),
    when(k.state_changed),
    k.last_used ? `${when(k.last_used)} (${k.last_operation} by ${k.last_used_by})` : '—']),
  (i) => ({data: {key: list[i].name, state: list[i].state}}));
  t.id = 'keys';
  main.append(t);
}
