// SVG charts without a library: horizontal bars (situations, actions, nodes) and a line chart
// (rate over time). Sizes follow the container through viewBox.

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs ?? {})) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

const PALETTE = ['#1f4fd1', '#0f9d58', '#e37400', '#c5221f', '#7b1fa2', '#00838f', '#5d4037', '#9e9d24', '#ad1457', '#455a64', '#2e7d32', '#6a1b9a'];

/** Horizontal bars for `[{label, value}]`; zero values are left out unless `keepZero`. */
export function bars(items, { keepZero = false, id, color } = {}) {
  const data = items.filter((d) => keepZero || Number(d.value) > 0);
  const width = 560;
  const rowH = 24;
  const labelW = 170;
  const height = Math.max(1, data.length) * rowH + 4;
  const max = Math.max(1, ...data.map((d) => Number(d.value) || 0));
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart bars', role: 'img', id: id ?? '' });
  if (data.length === 0) {
    svg.append(s('text', { x: 0, y: 16, class: 'axis' }, 'no data yet'));
    return svg;
  }
  data.forEach((d, i) => {
    const y = i * rowH + 2;
    const w = ((Number(d.value) || 0) / max) * (width - labelW - 80);
    svg.append(
      s('text', { x: labelW - 8, y: y + 15, 'text-anchor': 'end', class: 'label' }, d.label),
      s('rect', { x: labelW, y: y + 3, width: Math.max(1, w), height: rowH - 8, rx: 3, fill: color ?? PALETTE[i % PALETTE.length] },
        s('title', null, `${d.label}: ${Number(d.value).toLocaleString('en-US')}`)),
      s('text', { x: labelW + w + 6, y: y + 15, class: 'value' }, Number(d.value).toLocaleString('en-US')),
    );
  });
  return svg;
}

/** A line chart of `[{t: ms, v: number}]` with a time axis, for rates. */
export function line(points, { unit = '/s', id } = {}) {
  const width = 560;
  const height = 170;
  const padL = 56;
  const padB = 22;
  const padT = 8;
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart line', role: 'img', id: id ?? '' });
  if (points.length < 2) {
    svg.append(s('text', { x: padL, y: 40, class: 'axis' }, 'the rate appears after two samples'));
    return svg;
  }
  const t0 = points[0].t;
  const t1 = points[points.length - 1].t;
  const vmax = Math.max(1, ...points.map((p) => p.v)) * 1.1;
  const x = (t) => padL + ((t - t0) / Math.max(1, t1 - t0)) * (width - padL - 8);
  const y = (v) => padT + (1 - v / vmax) * (height - padT - padB);
  for (const f of [0, 0.5, 1]) {
    const v = vmax * f;
    svg.append(
      s('line', { x1: padL, x2: width - 8, y1: y(v), y2: y(v), class: 'grid' }),
      s('text', { x: padL - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, vmax < 10 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US')),
    );
  }
  const secs = (t1 - t0) / 1000;
  svg.append(
    s('text', { x: padL, y: height - 4, class: 'axis' }, '0 s'),
    s('text', { x: width - 8, y: height - 4, 'text-anchor': 'end', class: 'axis' }, `${secs.toFixed(secs < 10 ? 1 : 0)} s · objects${unit}`),
  );
  const d = points.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
  const area = `${d} L${x(t1).toFixed(1)},${y(0)} L${x(t0).toFixed(1)},${y(0)} Z`;
  svg.append(s('path', { d: area, class: 'area' }), s('path', { d, class: 'stroke' }));
  return svg;
}
