// Building the page. Every text, whatever its origin, becomes a text node: nothing here parses HTML,
// so a device id, event detail, release note or alert summary chosen by an attacker is shown as the
// characters it is and never runs.

// el('td', {class: 'num', data: {stage: 'offered'}}, 'text', childNode, ...)
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

const kSvgNs = 'http://www.w3.org/2000/svg';

export function svg(tag, attrs, ...children) {
  const node = document.createElementNS(kSvgNs, tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

function setAttrs(node, attrs) {
  if (!attrs) return;
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (/^on/i.test(name) || name === 'style' || name === 'srcdoc') {
      throw new Error('el: attribute ' + name + ' is not allowed');
    }
    if (name === 'data') {
      for (const [k, v] of Object.entries(value)) node.dataset[k] = String(v);
    } else if (name === 'href') {
      // Only links inside the dashboard: a server string can never become a javascript: URL.
      const href = String(value);
      if (!href.startsWith('#/')) throw new Error('el: only #/ links');
      node.setAttribute('href', href);
    } else if (name === 'class') {
      node.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    } else if (value === true) {
      node.setAttribute(name, '');
    } else {
      node.setAttribute(name, String(value));
    }
  }
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// Removes every child of `node`.
export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

// A table: columns [{title, num?}], rows of [cell...] (a cell is text or a node); `rowAttrs(i)`
// gives each row's attributes.
export function table(columns, rows, rowAttrs) {
  const head = el('tr', null, columns.map((c) => el('th', {class: c.num ? 'num' : null}, c.title)));
  const body = rows.map((cells, i) => el('tr', rowAttrs ? rowAttrs(i) : null,
      cells.map((cell, j) => el('td', {class: columns[j].num ? 'num' : columns[j].cls}, cell))));
  return el('table', null, el('thead', null, head), el('tbody', null, body));
}

// Unix seconds as "2026-12-05 10:44:22Z"; "—" for null.
export function when(t) {
  if (t === null || t === undefined || t === 0) return '—';
  const d = new Date(Number(t) * 1000);
  if (Number.isNaN(d.getTime())) return String(t);
  return d.toISOString().replace('T', ' ').slice(0, 19) + 'Z';
}

// A share 0..1 as "95.0 %"; "—" for null.
export function percent(x) {
  if (x === null || x === undefined || Number.isNaN(Number(x))) return '—';
  return (Number(x) * 100).toFixed(1) + ' %';
}

export function pill(text) {
  return el('span', {class: ['pill', String(text).replace(/[^a-z_-]/gi, '')]}, text);
}
