// One run: state and stage, progress, rate over time and ETA, situations and actions as a
// chart and a table, per-node counts, durationSummary, failures, cancel; for a dry run, its plan
// with filters and paging. Refreshed every second while the run is active.

import { api, lit } from '../api.js';
import { h, table, section, badge, num, duration, when, pageHeader, actionButton, facts, progress, confirmAction, notify, pager, link, fill } from '../ui.js';
import { bars, line } from '../charts.js';
import { observe, sourceFraction } from '../rates.js';

const SITUATIONS = ['CONFIRMED', 'FOUND', 'FOUND_ALREADY_LINKED', 'ABSENT', 'MISSING', 'SOURCE_MISSING', 'UNQUALIFIED', 'AMBIGUOUS', 'SOURCE_IGNORED', 'TARGET_IGNORED', 'LINK_ONLY', 'UNASSIGNED', 'ALL_GONE'];
const ACTIONS = ['CREATE', 'UPDATE', 'DELETE', 'LINK', 'UNLINK', 'EXCEPTION', 'IGNORE', 'REPORT', 'NOREPORT', 'ASYNC'];
const PLAN_PAGE = 25;

function counter(e) {
  if (!e) return null;
  const total = Number(e.total);
  // Nothing to process is an empty bar, not a full one: the phase may not have started.
  const frac = Number.isFinite(total) && e.total !== '?' ? (total === 0 ? 0 : e.processed / total) : null;
  return { frac, label: `${num(e.processed)} / ${e.total === '?' ? '?' : num(e.total)}` };
}

// Values of fields that name a secret are not shown (the same words the server masks in
// configuration): a plan is for reading what would change, not the secret itself.
const SECRET = /password|credential|secret|privatekey|token|apikey|passphrase/i;

function diffText(diff) {
  if (!Array.isArray(diff) || diff.length === 0) return h('span', { class: 'muted' }, '–');
  const shown = (v) => (v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v));
  const masked = (d) => SECRET.test(String(d.field ?? '').split('/').pop());
  const show = (v, d) => (masked(d) && v !== undefined && v !== null ? '********' : shown(v));
  return h('ul', { class: 'diff' }, diff.map((d) => h('li', null,
    h('span', { class: 'op op-' + d.operation }, d.operation), ' ', h('code', null, d.field), ' ',
    d.operation === 'add' ? h('ins', null, show(d.value, d))
      : d.operation === 'remove' ? h('del', null, show(d.oldValue, d))
        : [h('del', null, show(d.oldValue, d)), ' → ', h('ins', null, show(d.value, d))])));
}

function planView(runId) {
  const situation = h('select', { id: 'plan-situation' }, h('option', { value: '' }, 'any situation'), SITUATIONS.map((s) => h('option', { value: s }, s)));
  const action = h('select', { id: 'plan-action' }, h('option', { value: '' }, 'any action'), ACTIONS.map((s) => h('option', { value: s }, s)));
  const idText = h('input', { id: 'plan-id', placeholder: 'source or target id contains…' });
  const box = h('div', { id: 'plan' });
  let offset = 0;
  const load = async () => {
    const parts = [];
    if (situation.value) parts.push(`situation eq ${lit(situation.value)}`);
    if (action.value) parts.push(`action eq ${lit(action.value)}`);
    if (idText.value.trim()) parts.push(`(sourceId co ${lit(idText.value.trim())} or targetId co ${lit(idText.value.trim())})`);
    const r = await api.get(`recon/${encodeURIComponent(runId)}/plan`, {
      _queryFilter: parts.join(' and ') || 'true',
      _pageSize: PLAN_PAGE,
      _pagedResultsOffset: offset,
      _totalPagedResultsPolicy: 'EXACT',
      _sortKeys: '_id',
    });
    fill(box, 
      table([
        { label: 'Phase', get: (e) => e.phase },
        { label: 'Source', get: (e) => h('span', { class: 'mono' }, e.sourceId ?? '–') },
        { label: 'Target', get: (e) => h('span', { class: 'mono' }, e.targetId ?? '–') },
        { label: 'Situation', get: (e) => e.situation },
        { label: 'Action', get: (e) => h('strong', null, e.action ?? '–') },
        { label: 'Changes', get: (e) => diffText(e.diff) },
      ], r.result, { id: 'plan-table', empty: 'No entry matches.' }),
      pager({ offset, pageSize: PLAN_PAGE, total: r.totalPagedResults, id: 'plan-pager', onPage: (o) => { offset = o; load(); } }));
  };
  const apply = () => { offset = 0; load(); };
  situation.addEventListener('change', apply);
  action.addEventListener('change', apply);
  idText.addEventListener('change', apply);
  const el = section('Plan (what the run would do)',
    h('div', { class: 'row filters' }, situation, action, idText), box);
  return { el, load };
}

export async function mount(root, route) {
  const id = route.parts[1];
  const head = h('div');
  const progressBox = h('div');
  const rateBox = h('div');
  const sitBox = h('div');
  const actBox = h('div');
  const nodeBox = h('div');
  const durBox = h('div');
  const failBox = h('div');
  const cancel = actionButton('Cancel run', async () => {
    if (!(await confirmAction('Cancel this reconciliation? Objects already processed stay processed.'))) return;
    await api.post(`recon/${encodeURIComponent(id)}`, { _action: 'cancel' });
    notify('Cancel requested');
    await refresh();
  }, { class: 'danger', id: 'cancel-run' });
  root.append(
    pageHeader('Run', cancel),
    head,
    h('div', { class: 'grid two' }, section('Progress', progressBox), section('Rate', rateBox)),
    h('div', { class: 'grid two' }, section('Situations', sitBox), section('Actions', actBox)),
    h('div', { class: 'grid two' }, section('Per node', nodeBox), section('Durations', durBox)),
    section('Failures', failBox),
  );
  let plan = null;
  let last = null;

  async function refresh() {
    const s = await api.get(`recon/${encodeURIComponent(id)}`);
    const wasActive = last?.state === 'ACTIVE';
    last = s;
    const st = observe(s);
    cancel.hidden = s.state !== 'ACTIVE';
    fill(head, section(null,
      h('div', { class: 'row between' },
        h('h2', { id: 'run-title' }, s.mapping, s.analyze ? badge('dry run', 'info') : null),
        h('span', { id: 'run-state' }, badge(s.state))),
      facts([
        ['Run', h('span', { class: 'mono' }, s._id)],
        ['Stage', h('span', { id: 'run-stage' }, `${s.stage} — ${s.stageDescription ?? ''}`)],
        ['Started', when(s.started)],
        ['Ended', when(s.ended)],
        ['Duration', duration(s.duration)],
        ...(s.parameters?.sourceId || s.parameters?.id ? [['Source id', String(s.parameters.sourceId ?? s.parameters.id)]] : []),
      ]),
      s.message ? h('p', { class: 'error', id: 'run-message' }, s.message) : null));

    const src = counter(s.progress?.source?.existing);
    const tgt = counter(s.progress?.target?.existing);
    const lnk = counter(s.progress?.links?.existing);
    const t = s.progress?.target ?? {};
    fill(progressBox, 
      h('div', { class: 'labelled' }, h('span', null, 'Source'), progress(sourceFraction(s), src?.label, { id: 'run-progress' })),
      h('div', { class: 'labelled' }, h('span', null, 'Target'), progress(tgt?.frac, tgt?.label)),
      h('div', { class: 'labelled' }, h('span', null, 'Links'), progress(lnk?.frac, lnk?.label)),
      facts([
        [s.analyze ? 'Would change' : 'Target changes', `${num(t.created)} created · ${num(t.updated)} updated · ${num(t.deleted)} deleted · ${num(t.unchanged)} unchanged`],
        ['Links created', num(s.progress?.links?.created)],
        ['Status', h('span', { id: 'run-status' }, `${num(s.statusSummary?.SUCCESS)} succeeded · ${num(s.statusSummary?.FAILURE)} failed`)],
      ]));

    fill(rateBox, 
      facts([
        ['Rate', h('span', { id: 'run-rate' }, st.rate !== null ? `${num(Math.round(st.rate))} objects/s` + (s.state === 'ACTIVE' ? '' : ' (average)') : '–')],
        ['ETA', s.state === 'ACTIVE' ? (st.eta !== null ? duration(st.eta) : 'unknown') : 'ended'],
      ]),
      line(st.series, { id: 'rate-chart' }),
      h('p', { class: 'hint' }, 'Sampled while this page is open.'));

    const sit = Object.entries(s.situationSummary ?? {}).map(([label, value]) => ({ label, value }));
    fill(sitBox, bars(sit, { id: 'situation-chart' }), table([
      { label: 'Situation', get: (d) => d.label },
      { label: 'Objects', get: (d) => num(d.value), class: 'num' },
    ], sit.filter((d) => d.value > 0), { id: 'situations', empty: 'No situation yet.' }));

    const act = s.actionSummary
      ? Object.entries(s.actionSummary).map(([label, value]) => ({ label, value }))
      : [
        { label: 'created', value: t.created }, { label: 'updated', value: t.updated },
        { label: 'deleted', value: t.deleted }, { label: 'unchanged', value: t.unchanged },
        { label: 'links created', value: s.progress?.links?.created },
      ];
    fill(actBox, 
      s.actionSummary ? h('p', { class: 'hint' }, 'The actions this dry run would take.') : null,
      bars(act, { id: 'action-chart' }), table([
        { label: s.actionSummary ? 'Action' : 'Change', get: (d) => d.label },
        { label: 'Objects', get: (d) => num(d.value), class: 'num' },
      ], act.filter((d) => Number(d.value) > 0), { id: 'actions', empty: 'Nothing yet.' }));

    const nodes = Object.entries(s.sourceProcessedByNode ?? {}).map(([label, value]) => ({ label, value }));
    fill(nodeBox, bars(nodes, { id: 'node-chart', color: '#00838f' }), table([
      { label: 'Node', get: (d) => d.label },
      { label: 'Source objects', get: (d) => num(d.value), class: 'num' },
    ], nodes, { id: 'per-node', empty: 'No page processed yet.' }));

    const dur = Object.entries(s.durationSummary ?? {});
    fill(durBox, table([
      { label: 'Step', get: ([k]) => k },
      ...['count', 'min', 'mean', 'max', 'sum'].map((f) => ({ label: f, class: 'num', get: ([, v]) => (v && typeof v === 'object' ? num(v[f]) : f === 'count' ? num(v) : '') })),
    ], dur, { id: 'durations', empty: 'No duration recorded.' }));

    if (Number(s.statusSummary?.FAILURE) > 0 && (s.state === 'ACTIVE' || wasActive || !failBox.dataset.loaded)) {
      const f = await api.get('audit/recon', {
        _queryFilter: `reconId eq ${lit(id)} and status eq "FAILURE"`,
        _pageSize: 50,
        _fields: 'sourceObjectId,targetObjectId,situation,action,message',
      });
      failBox.dataset.loaded = '1';
      fill(failBox, table([
        { label: 'Source', get: (e) => objLink(e.sourceObjectId) },
        { label: 'Target', get: (e) => objLink(e.targetObjectId) },
        { label: 'Situation', get: (e) => e.situation ?? '–' },
        { label: 'Action', get: (e) => e.action ?? '–' },
        { label: 'Message', get: (e) => h('span', { class: 'wrap' }, e.message ?? '') },
      ], f.result, { id: 'failures' }),
      f.result?.length >= 50 ? h('p', { class: 'hint' }, 'The first 50 failures; the audit has them all.') : null);
    } else if (Number(s.statusSummary?.FAILURE ?? 0) === 0) {
      fill(failBox, h('p', { class: 'empty', id: 'failures' }, 'No failure.'));
    }

    if (s.analyze && s.state !== 'ACTIVE' && !plan) {
      plan = planView(id);
      root.append(plan.el);
      await plan.load();
    }
  }
  await refresh();
  return { refresh, every: () => (last?.state === 'ACTIVE' ? 500 : 10000) };
}

function objLink(path) {
  if (!path) return '–';
  return link(`#/object/${path.split('/').map(encodeURIComponent).join('/')}`, path, { class: 'mono' });
}
