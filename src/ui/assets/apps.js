// The Apps page: every app with status, instances, health bar, resources, image or
// command and last change; filters (name, label selector, status), sorting, and groups
// shown as folders. Rows are virtual (only those in view exist), so 1,000 apps redraw in
// the time 40 do.

import { h, clear, appHref, appStatus, healthBar, imageOrCmd, num, ago } from './dom.js';
import { store, subscribe, stats } from './live.js';
import { VirtualList } from './vlist.js';

const STATUSES = ['Running', 'Deploying', 'Suspended', 'Delayed', 'Waiting'];
const COLUMNS = [
  ['id', 'Name'], ['status', 'Status'], ['running', 'Instances'], ['health', 'Health'],
  ['cpus', 'CPUs'], ['mem', 'Mem'], ['image', 'Image / command'], ['changed', 'Last change'],
];

// Marathon's label selector: `key==value`, `key!=value`, `key`, comma-separated.
function labelMatches(labels, selector) {
  return selector.split(',').map((s) => s.trim()).filter(Boolean).every((term) => {
    const get = (k) => (labels || {})[k.trim()];
    if (term.includes('!=')) { const [k, v] = term.split('!='); return get(k) !== v.trim(); }
    if (term.includes('==')) { const [k, v] = term.split('=='); return get(k) === v.trim(); }
    return get(term) !== undefined;
  });
}

const lastChange = (app) => (app.versionInfo && app.versionInfo.lastConfigChangeAt) || app.version || '';

function sortValue(row, key) {
  const a = row.app || row.total;
  switch (key) {
    case 'status': return row.status || '';
    case 'running': return a.tasksRunning || 0;
    case 'health': return a.tasksHealthy || 0;
    case 'cpus': return a.cpus || 0;
    case 'mem': return a.mem || 0;
    case 'image': return row.app ? imageOrCmd(row.app) : '';
    case 'changed': return row.app ? lastChange(row.app) : '';
    default: return row.id;
  }
}

// The folder of a group: sums of its apps, for its row.
function folderTotal(apps) {
  const t = { instances: 0, tasksRunning: 0, tasksHealthy: 0, tasksUnhealthy: 0, tasksStaged: 0, cpus: 0, mem: 0 };
  for (const a of apps) {
    for (const k of Object.keys(t)) {
      t[k] += k === 'cpus' || k === 'mem' ? (a[k] || 0) * (a.instances || 0) : (a[k] || 0);
    }
  }
  return t;
}

export function mount(main) {
  const view = { text: '', label: '', status: '', sort: 'id', dir: 1, open: new Set() };
  const list = new VirtualList({
    rowHeight: 44,
    label: 'Apps',
    keyOf: (r) => (r.app ? 'a:' : 'g:') + r.id,
    renderRow: (r) => (r.app ? appRow(r) : folderRow(r)),
    empty: 'No apps match.',
  });
  const summary = h('p', { class: 'muted', 'aria-live': 'polite' });
  const header = h('div', { class: 'vrow head apps-grid', role: 'row' },
    COLUMNS.map(([key, title]) => h('button', {
      class: 'link sort c-' + key, role: 'columnheader', title: 'Sort by ' + title,
      onclick: () => { view.dir = view.sort === key ? -view.dir : 1; view.sort = key; redraw(); },
    }, title)));
  const filters = h('form', { class: 'filters', role: 'search', onsubmit: (e) => e.preventDefault() },
    h('label', {}, 'Name ', h('input', { type: 'search', id: 'filter-name', placeholder: '/group/app', oninput: (e) => { view.text = e.target.value.trim(); redraw(); } })),
    h('label', {}, 'Label ', h('input', { type: 'search', id: 'filter-label', placeholder: 'team==web', oninput: (e) => { view.label = e.target.value.trim(); redraw(); } })),
    h('label', {}, 'Status ', h('select', { id: 'filter-status', onchange: (e) => { view.status = e.target.value; redraw(); } },
      h('option', { value: '' }, 'any'), STATUSES.map((s) => h('option', { value: s }, s)))));

  function appRow(r) {
    const a = r.app;
    return h('div', { class: 'apps-grid', style: { paddingLeft: r.depth * 1.2 + 'em' } },
      h('span', { class: 'c-id', role: 'cell' }, h('a', { href: appHref(a.id) }, r.depth ? a.id.split('/').pop() : a.id)),
      h('span', { class: 'c-status', role: 'cell' }, h('span', { class: 'badge ' + r.status.toLowerCase() }, r.status)),
      h('span', { class: 'c-running', role: 'cell' }, `${a.tasksRunning || 0} / ${a.instances}`),
      h('span', { class: 'c-health', role: 'cell' }, healthBar(a)),
      h('span', { class: 'c-cpus', role: 'cell' }, num(a.cpus)),
      h('span', { class: 'c-mem', role: 'cell' }, num(a.mem, 0)),
      h('span', { class: 'c-image mono', role: 'cell', title: imageOrCmd(a) }, imageOrCmd(a)),
      h('span', { class: 'c-changed', role: 'cell', title: lastChange(a) }, ago(lastChange(a))));
  }

  function folderRow(r) {
    const open = view.open.has(r.id);
    const t = r.total;
    return h('div', { class: 'apps-grid folder', style: { paddingLeft: r.depth * 1.2 + 'em' } },
      h('span', { class: 'c-id', role: 'cell' }, h('button', {
        class: 'link', 'aria-expanded': String(open),
        onclick: () => { if (open) view.open.delete(r.id); else view.open.add(r.id); redraw(); },
      }, (open ? '▾ ' : '▸ ') + (r.depth ? r.id.split('/').pop() : r.id) + '/')),
      h('span', { class: 'c-status muted', role: 'cell' }, `${r.count} app${r.count === 1 ? '' : 's'}`),
      h('span', { class: 'c-running', role: 'cell' }, `${t.tasksRunning} / ${t.instances}`),
      h('span', { class: 'c-health', role: 'cell' }, healthBar(t)),
      h('span', { class: 'c-cpus', role: 'cell' }, num(t.cpus)),
      h('span', { class: 'c-mem', role: 'cell' }, num(t.mem, 0)),
      h('span', { class: 'c-image', role: 'cell' }), h('span', { class: 'c-changed', role: 'cell' }));
  }

  function sorted(rows) {
    const { sort, dir } = view;
    return rows.sort((x, y) => {
      const a = sortValue(x, sort), b = sortValue(y, sort);
      return (a < b ? -1 : a > b ? 1 : x.id < y.id ? -1 : 1) * dir;
    });
  }

  // Filtering shows matching apps flat; otherwise groups are folders.
  function rows() {
    const apps = [...store.apps.values()].map((app) => ({ id: app.id, app, status: appStatus(app, store.queue.get(app.id)), depth: 0 }));
    const filtering = view.text || view.label || view.status;
    if (filtering) {
      const text = view.text.toLowerCase();
      return sorted(apps.filter((r) => (!text || r.id.toLowerCase().includes(text))
        && (!view.label || labelMatches(r.app.labels, view.label))
        && (!view.status || r.status === view.status)));
    }
    const out = [];
    const walk = (prefix, members, depth) => {
      const direct = [], groups = new Map();
      for (const r of members) {
        const rest = r.id.slice(prefix.length + 1);
        const slash = rest.indexOf('/');
        if (slash < 0) direct.push({ ...r, depth });
        else {
          const g = prefix + '/' + rest.slice(0, slash);
          if (!groups.has(g)) groups.set(g, []);
          groups.get(g).push(r);
        }
      }
      const folders = [...groups].map(([id, ms]) => ({ id, depth, count: ms.length, total: folderTotal(ms.map((m) => m.app)), members: ms }));
      for (const row of sorted([...folders, ...direct])) {
        out.push(row);
        if (row.members && view.open.has(row.id)) walk(row.id, row.members, depth + 1);
      }
    };
    walk('', apps, 0);
    return out;
  }

  function redraw() {
    if (store.loadError && !store.loaded) {
      clear(summary, h('span', { class: 'error' }, 'Cannot load the apps: ' + store.loadError.message));
      return;
    }
    if (!store.loaded) { summary.textContent = 'Loading…'; return; }
    const items = rows();
    list.setItems(items);
    let tasks = 0;
    for (const s of store.tasksByApp.values()) tasks += s.size;
    summary.textContent = `${store.apps.size} apps, ` + (store.tasksLoaded ? `${tasks} tasks` : 'loading tasks…');
    for (const b of header.children) b.setAttribute('aria-sort', b.classList.contains('c-' + view.sort) ? (view.dir > 0 ? 'ascending' : 'descending') : 'none');
    if (stats.firstRenderMs === null && items.length) stats.firstRenderMs = performance.now();
  }

  clear(main, h('h1', {}, 'Apps'), h('div', { class: 'toolbar' }, filters, h('a', { class: 'button primary', href: '#/create' }, 'Create app')),
    summary, h('div', { class: 'table' }, header, list.el));
  redraw();
  return subscribe(redraw);
}
