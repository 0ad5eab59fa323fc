// Small DOM helpers: element building (no innerHTML of data, so nothing a server returns can
// run as markup), formatting, tables, badges, progress bars and the confirm dialog.

import { session } from './api.js';

/** `h('a', {href, class, onclick}, child...)`: children may be strings, nodes, arrays, null. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'style') Object.assign(el.style, v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** An action button: disabled for readers (the API refuses them anyway). */
export function actionButton(label, onclick, attrs = {}) {
  const writable = session.canWrite;
  const b = h('button', {
    type: 'button',
    ...attrs,
    disabled: attrs.disabled || !writable,
    title: writable ? attrs.title : 'Your role may only read',
  }, label);
  b.addEventListener('click', async (e) => {
    if (b.disabled) return;
    b.disabled = true;
    try {
      await onclick(e);
    } catch (err) {
      showError(err);
    } finally {
      if (b.isConnected) b.disabled = !!attrs.disabled || !session.canWrite;
    }
  });
  return b;
}

export function num(n) {
  if (n === undefined || n === null || n === '') return '–';
  const x = Number(n);
  return Number.isFinite(x) ? x.toLocaleString('en-US') : String(n);
}

export function duration(ms) {
  if (ms === undefined || ms === null || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function when(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString('en-GB', { hour12: false });
}

export function ago(iso) {
  if (!iso) return '–';
  const ms = Date.now() - new Date(iso).getTime();
  if (!Number.isFinite(ms)) return String(iso);
  if (ms < 0) return 'in ' + duration(-ms);
  return duration(ms) + ' ago';
}

const STATE_CLASS = {
  SUCCESS: 'ok', ACTIVE: 'live', FAILED: 'bad', CANCELED: 'warn',
  STATE_RUNNING: 'ok', STATE_DOWN: 'bad', STATE_PROCESSING_DOWN: 'warn',
  PENDING: 'live', ACQUIRED: 'warn', STARTED: 'ok', RUNNING: 'live', SKIPPED: 'warn',
  FAILURE: 'bad', true: 'ok', false: 'muted',
};

export function badge(text, cls) {
  return h('span', { class: 'badge ' + (cls ?? STATE_CLASS[text] ?? '') }, String(text));
}

/** A progress bar; `frac` in 0..1, or null for "unknown total" (striped). */
export function progress(frac, label, attrs = {}) {
  const known = frac !== null && frac !== undefined && Number.isFinite(frac);
  const pct = known ? Math.max(0, Math.min(1, frac)) * 100 : 100;
  return h('div', {
    ...attrs,
    class: 'progress' + (known ? '' : ' unknown') + (attrs.class ? ' ' + attrs.class : ''),
    role: 'progressbar',
    'aria-valuemin': 0,
    'aria-valuemax': 100,
    'aria-valuenow': known ? pct.toFixed(1) : null,
  },
  h('div', { class: 'bar', style: { width: pct + '%' } }),
  h('span', { class: 'label' }, label ?? (known ? pct.toFixed(0) + '%' : '')));
}

/**
 * A table: `cols` are `{label, get(row) -> node|string, class?}`. An empty list shows `empty`.
 */
export function table(cols, rows, { empty = 'Nothing to show.', id, rowAttrs } = {}) {
  if (!rows || rows.length === 0) return h('p', { class: 'empty', id }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', { id },
      h('thead', null, h('tr', null, cols.map((c) => h('th', { class: c.class }, c.label)))),
      h('tbody', null, rows.map((r) => h('tr', rowAttrs ? rowAttrs(r) : null,
        cols.map((c) => h('td', { class: c.class }, c.get(r))))))));
}

export function section(title, ...children) {
  return h('section', { class: 'card' }, title ? h('h2', null, title) : null, ...children);
}

export function pageHeader(title, ...extra) {
  return h('header', { class: 'page-header' }, h('h1', null, title), h('div', { class: 'row' }, ...extra));
}

/** A definition list of `[label, value]` pairs. */
export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

export function json(value) {
  return h('pre', { class: 'json' }, JSON.stringify(value, null, 2));
}

let bannerTimer = null;

/** Shows an error (an ApiError or any Error) above the page. */
export function showError(err) {
  const el = document.getElementById('banner');
  const status = err?.status ? `${err.status}: ` : '';
  el.textContent = status + (err?.message ?? String(err));
  el.className = 'banner error';
  el.hidden = false;
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(() => { el.hidden = true; }, 8000);
}

/** Shows a short success note above the page. */
export function notify(text) {
  const el = document.getElementById('banner');
  el.textContent = text;
  el.className = 'banner ok';
  el.hidden = false;
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

/** Asks before a destructive action; resolves true on OK. */
export function confirmAction(text) {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    dlg.showModal();
  });
}

/** Pager controls for an offset-paged CREST query. */
export function pager({ offset, pageSize, total, onPage, id = 'pager' }) {
  const last = total >= 0 ? Math.max(0, Math.ceil(total / pageSize) - 1) : null;
  const page = Math.floor(offset / pageSize);
  return h('div', { class: 'pager', id },
    h('button', { type: 'button', id: id + '-prev', disabled: page === 0, onclick: () => onPage(Math.max(0, offset - pageSize)) }, '‹ Previous'),
    h('span', { id: id + '-status' }, `Page ${page + 1}` + (last !== null ? ` of ${last + 1}` : '') + (total >= 0 ? ` · ${num(total)} entries` : '')),
    h('button', { type: 'button', id: id + '-next', disabled: last !== null && page >= last, onclick: () => onPage(offset + pageSize) }, 'Next ›'));
}

/** A link to a page of the console. */
export function link(href, text, attrs = {}) {
  return h('a', { href, ...attrs }, text);
}

export function encodeId(id) {
  return encodeURIComponent(id);
}

/** Replaces the children of `el` (strings, nodes, arrays; null and false are skipped). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}
