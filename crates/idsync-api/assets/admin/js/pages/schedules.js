// Schedules: every job with its next fire time and last firing; trigger now; pause and resume
// the ones stored over REST (a conf/ schedule is changed in its file).

import { api, query } from '../api.js';
import { h, table, section, badge, when, ago, pageHeader, actionButton, notify, json, fill } from '../ui.js';

function target(job) {
  const c = job.invokeContext ?? {};
  if (c.mapping) return `${c.action ?? 'reconcile'} ${c.mapping}`;
  if (c.source) return `liveSync ${c.source}`;
  if (c.script) return 'script';
  return job.invokeService ?? '';
}

export async function mount(root) {
  const box = h('div');
  const firingsBox = h('div', { id: 'firings' });
  let selected = null;
  root.append(pageHeader('Schedules'), section(null, box), firingsBox);

  async function showFirings(id) {
    selected = id;
    const f = await query(`scheduler/job/${encodeURIComponent(id)}/firings`, 'true', { _pageSize: 20 });
    fill(firingsBox, section(`Last firings of ${id}`, table([
      { label: 'Fired', get: (x) => [when(x.fireDate), x.manual ? ' (manual)' : ''] },
      { label: 'Node', get: (x) => x.node ?? '–' },
      { label: 'Status', get: (x) => badge(x.status ?? '–') },
      { label: 'Run', get: (x) => (x.runId ? h('a', { href: `#/runs/${encodeURIComponent(x.runId)}` }, x.runId) : '–') },
      { label: 'Message', get: (x) => h('span', { class: 'wrap' }, x.message ?? '') },
    ], f.result, { empty: 'Never fired.' })));
  }

  async function refresh() {
    const jobs = (await query('scheduler/job', 'true')).result ?? [];
    const last = await Promise.all(jobs.map((j) => query(`scheduler/job/${encodeURIComponent(j._id)}/firings`, 'true', { _pageSize: 1 })
      .then((r) => r.result?.[0] ?? null, () => null)));
    fill(box, table([
      { label: 'Schedule', get: (j) => h('a', { href: '#/schedules', onclick: (e) => { e.preventDefault(); showFirings(j._id); } }, j._id) },
      { label: 'Enabled', get: (j) => badge(j.enabled ? 'enabled' : 'paused', j.enabled ? 'ok' : 'warn') },
      { label: 'When', get: (j) => h('code', null, j.type === 'simple' ? `every ${j.repeatInterval} ms` : j.schedule) },
      { label: 'Does', get: target },
      { label: 'Next', get: (j) => (j.nextRunDate ? [when(j.nextRunDate), h('div', { class: 'muted small' }, ago(j.nextRunDate))] : '–') },
      { label: 'Last firing', get: (j) => lastCell(last[jobs.indexOf(j)]) },
      { label: '', get: (j) => h('div', { class: 'row nowrap' },
        actionButton('Trigger now', async () => {
          await api.post(`scheduler/job/${encodeURIComponent(j._id)}`, { _action: 'trigger' });
          notify(`${j._id} triggered`);
          await refresh();
          await showFirings(j._id);
        }, { class: 'small', id: `trigger-${j._id}` }),
        actionButton(j.enabled ? 'Pause' : 'Resume', async () => {
          const { nextRunDate, origin, _rev, ...body } = j;
          body.enabled = !j.enabled;
          await api.put(`scheduler/job/${encodeURIComponent(j._id)}`, body, j._rev ? { 'If-Match': j._rev } : {});
          notify(`${j._id} ${body.enabled ? 'resumed' : 'paused'}`);
          await refresh();
        }, { class: 'small', id: `pause-${j._id}`, disabled: !j._rev, title: j._rev ? undefined : `Defined in ${j.origin ?? 'conf/'}: change "enabled" there` })) },
    ], jobs, { id: 'schedules', empty: 'No schedule.' }));
    if (selected) await showFirings(selected);
  }
  await refresh();
  return { refresh, every: 5000 };
}

function lastCell(f) {
  if (!f) return h('span', { class: 'muted' }, 'never');
  return [badge(f.status ?? '?'), ' ', h('span', { class: 'muted small' }, ago(f.fireDate))];
}
