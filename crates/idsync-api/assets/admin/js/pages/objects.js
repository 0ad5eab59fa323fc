// Objects: browse and search managed/<type> and system/<name>/<type> with _queryFilter; one
// object with its links (and the objects at their other end) and the reconciliation audit
// entries that touched it ("why is this user here?").

import { api, query, lit } from '../api.js';
import { h, table, section, pageHeader, pager, link, json, when, badge, showError, fill } from '../ui.js';

const PAGE = 25;

async function collections() {
  const [managed, list] = await Promise.all([api.get('config/managed'), api.get('config')]);
  const out = (managed.objects ?? []).map((o) => `managed/${o.name}`);
  const connectors = (list.configurations ?? []).map((c) => c._id).filter((id) => id.startsWith('provisioner.openicf/'));
  const configs = await Promise.all(connectors.map((c) => api.get(`config/${c}`).catch(() => null)));
  configs.forEach((cfg, i) => {
    const name = connectors[i].slice('provisioner.openicf/'.length);
    for (const t of Object.keys(cfg?.objectTypes ?? {})) out.push(`system/${name}/${t}`);
  });
  return out;
}

function objectHref(path) {
  return `#/object/${path.split('/').map(encodeURIComponent).join('/')}`;
}

function cell(v) {
  if (v === undefined || v === null) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

async function browse(root, route) {
  const all = await collections();
  const path = route.query.get('path') || all[0] || 'managed/user';
  const filter = route.query.get('filter') || 'true';
  const offset = Number(route.query.get('offset') || 0);
  const pathSelect = h('select', { id: 'objects-path' }, all.map((p) => h('option', { value: p }, p)));
  pathSelect.value = path;
  const filterInput = h('input', { id: 'objects-filter', class: 'wide', value: filter, spellcheck: 'false' });
  const go = (o = 0) => {
    const q = new URLSearchParams({ path: pathSelect.value, filter: filterInput.value.trim() || 'true', offset: String(o) });
    location.hash = `#/objects?${q}`;
  };
  const form = h('form', { class: 'row filters', onsubmit: (e) => { e.preventDefault(); go(0); } },
    pathSelect, h('label', { class: 'inline grow' }, '_queryFilter ', filterInput), h('button', { type: 'submit', class: 'primary', id: 'objects-search' }, 'Search'));
  pathSelect.addEventListener('change', () => go(0));
  const box = h('div');
  root.append(pageHeader('Objects'), section(null, form, box));
  try {
    const r = await query(path, filter, { _pageSize: PAGE, _pagedResultsOffset: offset, _totalPagedResultsPolicy: 'EXACT' });
    const rows = r.result ?? [];
    const keys = [];
    for (const o of rows.slice(0, 20)) for (const k of Object.keys(o)) if (!k.startsWith('_') && !keys.includes(k)) keys.push(k);
    fill(box, 
      table([
        { label: '_id', get: (o) => link(objectHref(`${path}/${o._id}`), o._id, { class: 'mono' }) },
        ...keys.slice(0, 6).map((k) => ({ label: k, get: (o) => cell(o[k]) })),
      ], rows, { id: 'objects', empty: 'No object matches.' }),
      pager({ offset, pageSize: PAGE, total: r.totalPagedResults, id: 'objects-pager', onPage: go }));
  } catch (err) {
    fill(box, h('p', { class: 'error' }, err.message));
  }
}

async function detail(root, route) {
  const parts = route.parts.slice(1);
  const id = parts[parts.length - 1];
  const collection = parts.slice(0, -1).join('/');
  const full = `${collection}/${id}`;
  root.append(pageHeader(full, link(`#/objects?path=${encodeURIComponent(collection)}`, `‹ ${collection}`)));
  const [object, mappings] = await Promise.all([
    api.get(parts.map(encodeURIComponent).join('/')).catch((e) => { showError(e); return null; }),
    api.get('sync/mappings', { _queryFilter: 'true' }),
  ]);
  root.append(section('Object', object ? json(object) : h('p', { class: 'error' }, 'Not found.')));

  // Links: a mapping's links hold the source id as firstId and the target id as secondId.
  const sides = [];
  for (const m of mappings.result ?? []) {
    const linkType = m.links ?? m.name;
    if (m.source === collection) sides.push({ m, linkType, mine: 'firstId', other: 'secondId', otherPath: m.target });
    if (m.target === collection) sides.push({ m, linkType, mine: 'secondId', other: 'firstId', otherPath: m.source });
  }
  const found = [];
  await Promise.all(sides.map(async (s) => {
    const r = await query('repo/link', `linkType eq ${lit(s.linkType)} and ${s.mine} eq ${lit(id)}`, { _pageSize: 50 });
    for (const l of r.result ?? []) found.push({ ...s, link: l });
  }));
  root.append(section('Links', table([
    { label: 'Mapping', get: (x) => x.m.name },
    { label: 'Linked to', get: (x) => link(objectHref(`${x.otherPath}/${x.link[x.other]}`), `${x.otherPath}/${x.link[x.other]}`, { class: 'mono' }) },
    { label: 'Qualifier', get: (x) => x.link.linkQualifier ?? 'default' },
  ], found, { id: 'object-links', empty: 'No link: no mapping has linked this object.' })));

  const audit = await query('audit/recon', `sourceObjectId eq ${lit(full)} or targetObjectId eq ${lit(full)}`, {
    // Audit ids are time-ordered: newest first.
    _pageSize: 50, _sortKeys: '-_id',
  });
  root.append(section('Reconciliation audit (why is this object here?)', table([
    ...(audit.result ?? []).some((e) => e.timestamp) ? [{ label: 'When', get: (e) => when(e.timestamp) }] : [],
    { label: 'Run', get: (e) => (e.reconId ? link(`#/runs/${encodeURIComponent(e.reconId)}`, e.mapping ?? e.reconId) : '–') },
    { label: 'Situation', get: (e) => e.situation ?? '–' },
    { label: 'Action', get: (e) => h('strong', null, e.action ?? '–') },
    { label: 'Status', get: (e) => (e.status ? badge(e.status) : '–') },
    { label: 'Source', get: (e) => (e.sourceObjectId ? link(objectHref(e.sourceObjectId), e.sourceObjectId, { class: 'mono' }) : '–') },
    { label: 'Target', get: (e) => (e.targetObjectId ? link(objectHref(e.targetObjectId), e.targetObjectId, { class: 'mono' }) : '–') },
    { label: 'Message', get: (e) => h('span', { class: 'wrap' }, e.message ?? '') },
  ], audit.result, { id: 'object-audit', empty: 'No reconciliation has touched this object.' })));
}

export async function mount(root, route) {
  if (route.parts[0] === 'object' && route.parts.length >= 3) await detail(root, route);
  else await browse(root, route);
}
