// Queue and dead letters: the queued-sync events by mapping and state (delete a PENDING one),
// and the dead letters (replay or delete one, or every letter matching the filter).

import { api, query, lit, session } from '../api.js';
import { h, table, section, badge, num, when, pageHeader, actionButton, confirmAction, notify, pager, fill } from '../ui.js';

const PAGE = 20;

function resource(e) {
  const path = `${e.resourceCollection ?? ''}/${e.resourceId ?? ''}`;
  return h('a', { class: 'mono', title: path, href: `#/object/${path.split('/').map(encodeURIComponent).join('/')}` },
    h('span', { class: 'muted small' }, e.resourceCollection ?? ''), h('br'), e.resourceId ?? '');
}

export async function mount(root, route) {
  const mappings = ((await api.get('sync/mappings', { _queryFilter: 'true' })).result ?? []).filter((m) => m.queuedSync);
  const mappingSelect = h('select', { id: 'queue-mapping' }, h('option', { value: '' }, 'every mapping'),
    mappings.map((m) => h('option', { value: m.name }, m.name)));
  mappingSelect.value = route.query.get('mapping') ?? '';
  const stateSelect = h('select', { id: 'queue-state' }, h('option', { value: '' }, 'any state'),
    h('option', { value: 'PENDING' }, 'PENDING'), h('option', { value: 'ACQUIRED' }, 'ACQUIRED'));
  const causeInput = h('input', { id: 'dead-cause', placeholder: 'failure cause contains…' });
  const eventsBox = h('div');
  const lettersBox = h('div');
  const counts = h('div', { class: 'row counts', id: 'queue-counts' });
  let eventOffset = 0;
  let letterOffset = 0;

  const mappingFilter = () => (mappingSelect.value ? [`mapping eq ${lit(mappingSelect.value)}`] : []);
  const eventFilter = () => [...mappingFilter(), ...(stateSelect.value ? [`state eq ${lit(stateSelect.value)}`] : [])].join(' and ') || 'true';
  const letterFilter = () => [...mappingFilter(), ...(causeInput.value.trim() ? [`failureCause co ${lit(causeInput.value.trim())}`] : [])].join(' and ') || 'true';

  /** Applies `each` to every dead letter matching the filter, a page at a time. */
  async function everyLetter(verb, each) {
    const total = (await query('sync/deadletter', letterFilter(), { _pageSize: 1, _totalPagedResultsPolicy: 'EXACT', _fields: '_id' })).totalPagedResults;
    if (!(await confirmAction(`${verb} ${num(total)} dead letter(s) matching the filter?`))) return;
    let done = 0;
    for (;;) {
      const page = await query('sync/deadletter', letterFilter(), { _pageSize: 100, _fields: '_id' });
      if (!page.result?.length) break;
      for (const l of page.result) {
        await each(l._id);
        done++;
      }
    }
    notify(`${verb}: ${num(done)} dead letter(s)`);
    letterOffset = 0;
    await refresh();
  }

  const replayAll = actionButton('Replay all matching', () => everyLetter('Replay', (id) => api.post(`sync/deadletter/${encodeURIComponent(id)}`, { _action: 'replay' })), { id: 'replay-all' });
  const deleteAll = actionButton('Delete all matching', () => everyLetter('Delete', (id) => api.del(`sync/deadletter/${encodeURIComponent(id)}`)), { id: 'delete-all', class: 'danger' });

  root.append(
    pageHeader('Queue', h('label', { class: 'inline' }, 'Mapping ', mappingSelect)),
    counts,
    section('Events', h('div', { class: 'row filters' }, stateSelect), eventsBox),
    section('Dead letters', h('div', { class: 'row filters' }, causeInput, replayAll, deleteAll), lettersBox));

  async function refresh() {
    const [events, letters, pending, acquired] = await Promise.all([
      query('sync/queue', eventFilter(), { _pageSize: PAGE, _pagedResultsOffset: eventOffset, _totalPagedResultsPolicy: 'EXACT', _sortKeys: 'createDate' }),
      query('sync/deadletter', letterFilter(), { _pageSize: PAGE, _pagedResultsOffset: letterOffset, _totalPagedResultsPolicy: 'EXACT', _sortKeys: '-failedDate' }),
      query('sync/queue', [...mappingFilter(), 'state eq "PENDING"'].join(' and '), { _pageSize: 1, _totalPagedResultsPolicy: 'EXACT', _fields: '_id' }),
      query('sync/queue', [...mappingFilter(), 'state eq "ACQUIRED"'].join(' and '), { _pageSize: 1, _totalPagedResultsPolicy: 'EXACT', _fields: '_id' }),
    ]);
    const deadTotal = mappingSelect.value || causeInput.value.trim()
      ? (await query('sync/deadletter', mappingFilter().join(' and ') || 'true', { _pageSize: 1, _totalPagedResultsPolicy: 'EXACT', _fields: '_id' })).totalPagedResults
      : letters.totalPagedResults;
    fill(counts, 
      h('div', { class: 'stat' }, h('span', { class: 'stat-n', id: 'count-pending' }, num(pending.totalPagedResults)), h('span', null, 'pending')),
      h('div', { class: 'stat' }, h('span', { class: 'stat-n', id: 'count-acquired' }, num(acquired.totalPagedResults)), h('span', null, 'acquired')),
      h('div', { class: 'stat' }, h('span', { class: 'stat-n', id: 'count-dead' }, num(deadTotal)), h('span', null, 'dead letters')));
    fill(eventsBox, 
      table([
        { label: 'Created', get: (e) => when(e.createDate) },
        { label: 'Mapping', get: (e) => e.mapping },
        { label: 'Action', get: (e) => e.syncAction },
        { label: 'Object', get: resource },
        { label: 'State', get: (e) => badge(e.state) },
        { label: 'Node', get: (e) => e.nodeId ?? '–' },
        { label: 'Retries left', get: (e) => (e.remainingRetries === -1 ? '∞' : num(e.remainingRetries)), class: 'num' },
        { label: '', get: (e) => (e.state === 'PENDING' ? actionButton('Delete', async () => {
          if (!(await confirmAction(`Delete the pending ${e.syncAction} of ${e.resourceCollection}/${e.resourceId}? It will not be synchronized.`))) return;
          await api.del(`sync/queue/${encodeURIComponent(e._id)}`);
          notify('Event deleted');
          await refresh();
        }, { class: 'small danger' }) : null) },
      ], events.result, { id: 'events', empty: 'The queue is empty.' }),
      events.totalPagedResults > PAGE ? pager({ offset: eventOffset, pageSize: PAGE, total: events.totalPagedResults, id: 'events-pager', onPage: (o) => { eventOffset = o; refresh(); } }) : null);
    fill(lettersBox, 
      table([
        { label: 'Failed', get: (l) => when(l.failedDate) },
        { label: 'Mapping', get: (l) => l.mapping },
        { label: 'Action', get: (l) => l.syncAction },
        { label: 'Object', get: resource },
        { label: 'Retries', get: (l) => num(l.retries), class: 'num' },
        { label: 'Cause', get: (l) => h('span', { class: 'wrap' }, l.failureCause ?? '') },
        { label: '', get: (l) => h('div', { class: 'row nowrap' },
          actionButton('Replay', async () => {
            await api.post(`sync/deadletter/${encodeURIComponent(l._id)}`, { _action: 'replay' });
            notify('Queued again');
            await refresh();
          }, { class: 'small replay', dataset: null }),
          actionButton('Delete', async () => {
            if (!(await confirmAction('Delete this dead letter without replaying it?'))) return;
            await api.del(`sync/deadletter/${encodeURIComponent(l._id)}`);
            notify('Dead letter deleted');
            await refresh();
          }, { class: 'small danger' })) },
      ], letters.result, { id: 'dead-letters', empty: 'No dead letter.' }),
      letters.totalPagedResults > PAGE ? pager({ offset: letterOffset, pageSize: PAGE, total: letters.totalPagedResults, id: 'letters-pager', onPage: (o) => { letterOffset = o; refresh(); } }) : null);
    replayAll.disabled = !session.canWrite || letters.totalPagedResults === 0;
    deleteAll.disabled = replayAll.disabled;
  }
  const apply = () => { eventOffset = 0; letterOffset = 0; refresh(); };
  mappingSelect.addEventListener('change', apply);
  stateSelect.addEventListener('change', apply);
  causeInput.addEventListener('change', apply);
  await refresh();
  return { refresh, every: 2000 };
}
