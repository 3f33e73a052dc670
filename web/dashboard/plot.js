// The adoption plot: share of active devices on a release over time, drawn as inline SVG from the
// series the server sends ([{t: unix seconds, share: 0..1}, ...]).
import {svg, when} from './dom.js';

const kWidth = 640;
const kHeight = 240;
const kLeft = 48;
const kRight = 16;
const kTop = 16;
const kBottom = 36;

export function adoptionPlot(series, publishedAt) {
  const points = (Array.isArray(series) ? series : [])
      .filter((p) => p && Number.isFinite(Number(p.t)) && Number.isFinite(Number(p.share)))
      .map((p) => ({t: Number(p.t), share: Math.min(1, Math.max(0, Number(p.share)))}))
      .sort((a, b) => a.t - b.t);
  const root = svg('svg', {
    id: 'adoption-plot',
    class: 'plot',
    viewBox: `0 0 ${kWidth} ${kHeight}`,
    role: 'img',
    'aria-label': 'Share of active devices on this release over time',
    data: {points: points.length},
  });
  const plotW = kWidth - kLeft - kRight;
  const plotH = kHeight - kTop - kBottom;
  // Share grid lines and labels: 0, 25, 50, 75, 100 %.
  for (const share of [0, 0.25, 0.5, 0.75, 1]) {
    const y = kTop + plotH * (1 - share);
    root.append(svg('line', {class: 'grid', x1: kLeft, x2: kWidth - kRight, y1: y, y2: y}));
    root.append(svg('text', {x: kLeft - 6, y: y + 4, 'text-anchor': 'end'}, `${share * 100} %`));
  }
  root.append(svg('line', {class: 'axis', x1: kLeft, x2: kLeft, y1: kTop, y2: kTop + plotH}));
  root.append(svg('line',
      {class: 'axis', x1: kLeft, x2: kWidth - kRight, y1: kTop + plotH, y2: kTop + plotH}));
  if (points.length === 0) {
    root.append(svg('text', {x: kLeft + plotW / 2, y: kTop + plotH / 2, 'text-anchor': 'middle'},
        'no adoption data yet'));
    return root;
  }
  let t0 = points[0].t;
  if (Number.isFinite(Number(publishedAt)) && Number(publishedAt) > 0) {
    t0 = Math.min(t0, Number(publishedAt));
  }
  const t1 = Math.max(points[points.length - 1].t, t0 + 1);
  const x = (t) => kLeft + plotW * (t - t0) / (t1 - t0);
  const y = (share) => kTop + plotH * (1 - share);
  // No device ran the release before it was published: the line starts at 0 % then.
  const line = t0 < points[0].t ? [{t: t0, share: 0}, ...points] : points;
  const coords = line.map((p) => `${x(p.t).toFixed(1)},${y(p.share).toFixed(1)}`).join(' ');
  root.append(svg('polyline', {class: 'line', points: coords}));
  for (const p of points) {
    root.append(svg('circle', {class: 'point', cx: x(p.t).toFixed(1), cy: y(p.share).toFixed(1), r: 3},
        svg('title', null, `${when(p.t)}: ${(p.share * 100).toFixed(1)} %`)));
  }
  root.append(svg('text', {x: kLeft, y: kHeight - 12, 'text-anchor': 'start'}, when(t0)));
  root.append(svg('text', {x: kWidth - kRight, y: kHeight - 12, 'text-anchor': 'end'}, when(t1)));
  return root;
}
