// Configuration: read-only views of the mappings and connectors as the server runs them
// (secrets masked by the server), and a connection test per connector.

import { api } from '../api.js';
import { h, table, section, pageHeader, actionButton, json, badge, fill } from '../ui.js';

export async function mount(root) {
  const [list, sync] = await Promise.all([api.get('config'), api.get('config/sync')]);
  const ids = (list.configurations ?? []).map((c) => c._id);
  const connectors = ids.filter((id) => id.startsWith('provisioner.openicf/')).map((id) => id.slice('provisioner.openicf/'.length));
  const viewer = h('div', { id: 'config-view' });
  const results = new Map();

  const show = async (id) => {
    const doc = await api.get(`config/${id}`);
    fill(viewer, section(`config/${id}`, json(doc)));
  };

  root.append(
    pageHeader('Configuration'),
    section('Mappings', table([
      { label: 'Mapping', get: (m) => m.name },
      { label: 'Source → target', get: (m) => [h('code', null, m.source), ' → ', h('code', null, m.target)] },
      { label: 'Properties', get: (m) => String((m.properties ?? []).length), class: 'num' },
      { label: 'Policies', class: 'wrap', get: (m) => (m.policies ?? []).map((p) => `${p.situation}: ${typeof p.action === 'string' ? p.action : 'script'}`).join(', ') },
    ], sync.mappings ?? [], { id: 'config-mappings', empty: 'No mapping.' })),
    section('Connectors', table([
      { label: 'Connector', get: (c) => h('a', { href: '#/config', onclick: (e) => { e.preventDefault(); show(`provisioner.openicf/${c}`); } }, c) },
      { label: 'Test', get: (c) => {
        const out = h('span', { class: 'test-result', id: `test-${c}` });
        results.set(c, out);
        return h('div', { class: 'row nowrap' }, actionButton('Test connection', async () => {
          fill(out, 'testing…');
          const r = await api.post(`system/${encodeURIComponent(c)}`, { _action: 'test' });
          fill(out, r.ok ? badge('ok', 'ok') : badge('failed', 'bad'), ' ', r.error ?? '');
        }, { class: 'small' }), out);
      } },
    ], connectors, { id: 'config-connectors', empty: 'No connector.' })),
    section('Every configuration', h('div', { class: 'row wrap' }, ids.map((id) => h('button', { type: 'button', class: 'small', onclick: () => show(id) }, id)))),
    viewer);
  if (ids.includes('sync')) await show('sync');
}
