// Mappings: each mapping's source → target, its safety limits, its last run, and the buttons
// to start a reconciliation, a dry run, or a reconById of one source id.

import { api, ApiError, session } from '../api.js';
import { h, section, badge, num, duration, ago, link, pageHeader, actionButton, facts, showError, fill } from '../ui.js';
import { runProgress } from './dashboard.js';
import { observe } from '../rates.js';

function limits(raw) {
  const s = raw?.safety ?? {};
  const show = (v) => (v === undefined || v === null ? 'none' : String(v));
  return `maxDeletes ${show(s.maxDeletes)} · maxUnlinks ${show(s.maxUnlinks)} · minSourceSize ${show(s.minSourceSize)}`;
}

function situations(summary) {
  const parts = Object.entries(summary?.situationSummary ?? {})
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${num(n)}`);
  return parts.length ? parts.join(' · ') : 'no object';
}

async function start(mapping, extra) {
  try {
    const r = await api.post('recon', { _action: 'recon', mapping, ...extra });
    location.hash = `#/runs/${encodeURIComponent(r._id)}`;
  } catch (err) {
    if (err instanceof ApiError && err.status === 409 && err.body?.detail?._id) {
      showError(new ApiError(409, `${err.message} — opening it`));
      location.hash = `#/runs/${encodeURIComponent(err.body.detail._id)}`;
      return;
    }
    throw err;
  }
}

function card(m, raw, last) {
  const id = (suffix) => `m-${m.name}-${suffix}`;
  const idInput = h('input', { id: id('source-id'), placeholder: 'source id', class: 'narrow', disabled: !session.canWrite });
  const body = h('div', { class: 'mapping-last' });
  const show = (run) => {
    if (!run) {
      fill(body, h('p', { class: 'muted' }, 'Never reconciled.'));
      return;
    }
    const st = observe(run);
    fill(body, 
      h('div', { class: 'row' },
        link(`#/runs/${encodeURIComponent(run._id)}`, run.analyze ? 'Last dry run' : 'Last run'),
        badge(run.state),
        h('span', { class: 'muted small' }, run.state === 'ACTIVE' ? `started ${ago(run.started)}` : `ended ${ago(run.ended)} · ${duration(run.duration)}`)),
      run.state === 'ACTIVE' ? runProgress(run, st) : h('p', { class: 'small' }, situations(run)),
      run.message ? h('p', { class: 'error small' }, run.message) : null);
  };
  show(last);
  const el = section(null,
    h('div', { class: 'row between' },
      h('h2', null, m.name),
      h('div', { class: 'row' },
        m.queuedSync ? badge('queued sync', 'info') : null,
        m.enableSync === false ? badge('implicit sync off', 'muted') : null)),
    h('p', { class: 'route' }, h('code', null, m.source), ' → ', h('code', null, m.target)),
    facts([['Safety limits', limits(raw)]]),
    body,
    h('div', { class: 'row actions' },
      actionButton('Reconcile', () => start(m.name, {}), { class: 'primary', id: id('recon') }),
      actionButton('Dry run', () => start(m.name, { analyze: true }), { id: id('dryrun'), title: 'Compute the plan without changing anything' }),
      h('span', { class: 'sep' }),
      idInput,
      actionButton('Reconcile this id', async () => {
        const sid = idInput.value.trim();
        if (!sid) throw new Error('Enter a source id first');
        const r = await api.post('recon', { _action: 'reconById', mapping: m.name, id: sid });
        location.hash = `#/runs/${encodeURIComponent(r._id)}`;
      }, { id: id('recon-by-id') })));
  el.dataset.mapping = m.name;
  el.classList.add('mapping');
  return { el, show };
}

export async function mount(root) {
  const list = h('div', { class: 'stack', id: 'mappings' });
  root.append(pageHeader('Mappings'), list);
  const [mappings, config] = await Promise.all([
    api.get('sync/mappings', { _queryFilter: 'true' }),
    api.get('config/sync'),
  ]);
  const raws = new Map((config.mappings ?? []).map((m) => [m.name, m]));
  const cards = new Map();

  async function refresh() {
    const runs = (await api.get('recon')).reconciliations ?? [];
    const lastOf = new Map();
    for (const r of runs) lastOf.set(r.mapping, r);
    for (const m of mappings.result ?? []) {
      let c = cards.get(m.name);
      if (!c) {
        c = card(m, raws.get(m.name), lastOf.get(m.name));
        cards.set(m.name, c);
        list.append(c.el);
      } else {
        c.show(lastOf.get(m.name));
      }
    }
    if ((mappings.result ?? []).length === 0) fill(list, h('p', { class: 'empty' }, 'The project has no mapping.'));
  }
  await refresh();
  return { refresh, every: 2000 };
}
