// Dashboard: the cluster's nodes and the work each holds (its reconciliation jobs, the queued
// mappings it consumes), the active runs with progress per run and per node, rate and ETA, the
// queue and dead letters per queued mapping, the last failed runs. Refreshed every 2 s.

import { api, count, lit } from '../api.js';
import { h, table, section, badge, progress, num, duration, ago, when, link, pageHeader, fill } from '../ui.js';
import { observe, sourceFraction } from '../rates.js';

export function runProgress(s, st) {
  const frac = sourceFraction(s);
  const src = s.progress?.source?.existing ?? {};
  const label = `${num(src.processed)} / ${src.total === '?' ? '?' : num(src.total)}`;
  const nodes = Object.entries(s.sourceProcessedByNode ?? {});
  const total = Number(src.total);
  return h('div', { class: 'run-progress' },
    progress(frac, label, { class: 'run-bar', dataset: { run: s._id } }),
    h('div', { class: 'muted small' },
      `${s.stageDescription ?? s.stage} · `,
      st.rate !== null ? `${num(Math.round(st.rate))} objects/s` : 'rate –',
      ' · ETA ', st.eta !== null ? duration(st.eta) : '–'),
    nodes.length > 1 || (nodes.length === 1 && Number.isFinite(total))
      ? h('div', { class: 'node-bars' }, nodes.map(([node, n]) => h('div', { class: 'node-bar' },
        h('span', { class: 'node-name' }, node),
        progress(Number.isFinite(total) && total > 0 ? n / total : null, num(n)))))
      : null);
}

// What a node holds now (`GET cluster`'s `jobs` and `locks`): its claimed jobs grouped by run and
// kind, each linking to its run, and the queued mappings whose lock it holds.
function held(n) {
  const groups = new Map();
  for (const j of n.jobs ?? []) {
    const key = `${j.runId ?? ''}\u0000${j.kind}`;
    const g = groups.get(key) ?? { runId: j.runId, kind: j.kind, count: 0 };
    g.count += 1;
    groups.set(key, g);
  }
  const jobs = [...groups.values()].map((g) => {
    const label = `${g.kind} × ${g.count}`;
    return h('div', { class: 'held-job small' },
      g.runId ? link(`#/runs/${encodeURIComponent(g.runId)}`, label) : label);
  });
  const queues = (n.locks ?? []).filter((l) => l.mapping).map((l) => h('div', { class: 'held-queue small' },
    'queue ', link(`#/queue?mapping=${encodeURIComponent(l.mapping)}`, l.mapping)));
  return jobs.length + queues.length === 0 ? h('span', { class: 'muted' }, 'nothing') : [jobs, queues];
}

export async function mount(root) {
  const nodesBox = h('div');
  const activeBox = h('div');
  const queueBox = h('div');
  const failedBox = h('div');
  const recentBox = h('div');
  root.append(
    pageHeader('Dashboard'),
    h('div', { class: 'grid two' },
      section('Nodes', nodesBox),
      section('Queue and dead letters', queueBox)),
    section('Active runs', activeBox),
    h('div', { class: 'grid two' },
      section('Last failed runs', failedBox),
      section('Recent runs', recentBox)),
  );

  async function refresh() {
    const [cluster, recon, mappings] = await Promise.all([
      api.get('cluster'),
      api.get('recon'),
      api.get('sync/mappings', { _queryFilter: 'true' }),
    ]);
    const nodes = cluster.results ?? [];
    fill(nodesBox, table([
      { label: 'Node', get: (n) => n.instanceId },
      { label: 'State', get: (n) => badge(n.state) },
      { label: 'Last heartbeat', get: (n) => ago(n.lastHeartbeat) },
      { label: 'Holds', get: held },
      { label: 'Up since', get: (n) => when(n.startup) },
    ], nodes, { id: 'nodes', empty: 'No node has registered yet.' }));

    const runs = recon.reconciliations ?? [];
    const active = runs.filter((r) => r.state === 'ACTIVE');
    fill(activeBox, active.length === 0
      ? h('p', { class: 'empty', id: 'active-runs' }, 'No reconciliation is running.')
      : h('div', { id: 'active-runs', class: 'stack' }, active.map((r) => {
        const st = observe(r);
        return h('div', { class: 'active-run' },
          h('div', { class: 'row between' },
            h('div', null, link(`#/runs/${encodeURIComponent(r._id)}`, r.mapping, { class: 'strong' }),
              r.analyze ? badge('dry run', 'info') : null),
            h('span', { class: 'muted small' }, `started ${ago(r.started)}`)),
          runProgress(r, st));
      })));

    const failed = runs.filter((r) => r.state === 'FAILED').slice(-5).reverse();
    fill(failedBox, table([
      { label: 'Run', get: (r) => link(`#/runs/${encodeURIComponent(r._id)}`, r.mapping) },
      { label: 'Ended', get: (r) => ago(r.ended) },
      { label: 'Why', get: (r) => h('span', { class: 'wrap' }, r.message ?? `${num(r.statusSummary?.FAILURE)} failures`) },
    ], failed, { id: 'failed-runs', empty: 'No failed run.' }));

    const recent = runs.filter((r) => r.state !== 'ACTIVE').slice(-8).reverse();
    fill(recentBox, table([
      { label: 'Run', get: (r) => link(`#/runs/${encodeURIComponent(r._id)}`, r.mapping) },
      { label: 'State', get: (r) => [badge(r.state), r.analyze ? badge('dry run', 'info') : null] },
      { label: 'Objects', get: (r) => num(r.progress?.source?.existing?.processed), class: 'num' },
      { label: 'Duration', get: (r) => duration(r.duration), class: 'num' },
      { label: 'Ended', get: (r) => ago(r.ended) },
    ], recent, { id: 'recent-runs', empty: 'No run has ended yet.' }));

    const queued = (mappings.result ?? []).filter((m) => m.queuedSync);
    const rows = await Promise.all(queued.map(async (m) => {
      const f = `mapping eq ${lit(m.name)}`;
      const [pending, acquired, dead] = await Promise.all([
        count('sync/queue', `${f} and state eq "PENDING"`),
        count('sync/queue', `${f} and state eq "ACQUIRED"`),
        count('sync/deadletter', f),
      ]);
      return { name: m.name, pending, acquired, dead };
    }));
    fill(queueBox, table([
      { label: 'Mapping', get: (r) => link(`#/queue?mapping=${encodeURIComponent(r.name)}`, r.name) },
      { label: 'Pending', get: (r) => num(r.pending), class: 'num' },
      { label: 'Acquired', get: (r) => num(r.acquired), class: 'num' },
      { label: 'Dead letters', get: (r) => r.dead > 0 ? badge(num(r.dead), 'bad') : '0', class: 'num' },
    ], rows, { id: 'queue-depth', empty: 'No mapping uses queued synchronization.' }));
  }

  await refresh();
  return { refresh, every: 2000 };
}
