// Rate and ETA of runs, from the summaries this tab has seen: each poll adds a sample
// (time, objects processed), kept per run while the tab is open. The rate is taken over the
// last ten seconds of samples so that it follows changes without jumping at every poll.

const samples = new Map();
const WINDOW_MS = 10_000;
const KEEP = 900;

/** Objects processed so far by a run: source and target phases. */
export function processed(summary) {
  const p = summary?.progress ?? {};
  return (Number(p.source?.existing?.processed) || 0) + (Number(p.target?.existing?.processed) || 0);
}

/** The source phase's fraction done, or null while its total is unknown. */
export function sourceFraction(summary) {
  const e = summary?.progress?.source?.existing ?? {};
  const total = Number(e.total);
  if (!Number.isFinite(total) || e.total === '?') return null;
  if (total === 0) return 1;
  return Number(e.processed) / total;
}

/** Records a summary of a run; returns `{rate, eta, series}` (rate in objects/s, eta in ms). */
export function observe(summary) {
  const id = summary._id;
  let list = samples.get(id);
  if (!list) samples.set(id, (list = []));
  const now = Date.now();
  const n = processed(summary);
  const last = list[list.length - 1];
  if (!last || now - last.t >= 200) list.push({ t: now, n });
  if (list.length > KEEP) list.splice(0, list.length - KEEP);
  return stats(summary);
}

export function stats(summary) {
  const list = samples.get(summary._id) ?? [];
  let rate = null;
  if (summary.state === 'ACTIVE' && list.length >= 2) {
    const end = list[list.length - 1];
    let start = list[0];
    for (const s of list) if (end.t - s.t <= WINDOW_MS) { start = s; break; }
    if (end.t > start.t) rate = ((end.n - start.n) * 1000) / (end.t - start.t);
  } else if (summary.duration > 0) {
    rate = (processed(summary) * 1000) / summary.duration;
  }
  let eta = null;
  const e = summary.progress?.source?.existing ?? {};
  const total = Number(e.total);
  if (summary.state === 'ACTIVE' && rate > 0 && Number.isFinite(total)) {
    eta = (Math.max(0, total - Number(e.processed)) * 1000) / rate;
  }
  // Each point is the rate over the two seconds before it: pages commit in steps, and a
  // poll-to-poll rate would zigzag between them.
  const series = [];
  let j = 0;
  for (let i = 1; i < list.length; i++) {
    while (j < i - 1 && list[i].t - list[j + 1].t >= 2000) j++;
    const dt = list[i].t - list[j].t;
    if (dt > 0) series.push({ t: list[i].t, v: ((list[i].n - list[j].n) * 1000) / dt });
  }
  return { rate, eta, series, samples: list };
}
