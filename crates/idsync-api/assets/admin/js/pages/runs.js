// Runs: every stored reconciliation, newest first, with its state and counts.

import { api } from '../api.js';
import { h, table, badge, num, duration, ago, when, link, pageHeader, section, fill } from '../ui.js';

export async function mount(root) {
  const box = h('div');
  root.append(pageHeader('Runs'), section(null, box));
  async function refresh() {
    const runs = ((await api.get('recon')).reconciliations ?? []).slice().reverse();
    fill(box, table([
      { label: 'Run', get: (r) => link(`#/runs/${encodeURIComponent(r._id)}`, r._id, { class: 'mono' }) },
      { label: 'Mapping', get: (r) => r.mapping },
      { label: 'State', get: (r) => [badge(r.state), r.analyze ? badge('dry run', 'info') : null] },
      { label: 'Source objects', get: (r) => num(r.progress?.source?.existing?.processed), class: 'num' },
      { label: 'Failures', get: (r) => num(r.statusSummary?.FAILURE), class: 'num' },
      { label: 'Started', get: (r) => when(r.started) },
      { label: 'Duration', get: (r) => duration(r.duration), class: 'num' },
      { label: 'Ended', get: (r) => (r.ended ? ago(r.ended) : '–') },
    ], runs, { id: 'runs', empty: 'No reconciliation has run yet.' }));
  }
  await refresh();
  return { refresh, every: 3000 };
}
