// The Nodes page: the control nodes (from `GET /v2/infra/control-nodes`: every scheduler
// in the election, and which leads) and every agent with its
// datacenter, rack and other attributes, resources used of offered, its tasks, and lost
// agents. Agents come from `GET /v2/infra/agents`; the page re-reads it every 3 s while
// open (one timer for the page, none per row).

import { h, clear, appHref, num, showError } from './dom.js';
import { get } from './api.js';
import { store } from './live.js';

function usage(used, offered, unit) {
  const pct = offered ? Math.min(100, (100 * used) / offered) : 0;
  return h('span', { class: 'usage' },
    h('meter', { min: 0, max: offered || 1, value: used, 'aria-label': `${num(used)} of ${num(offered)} ${unit}` }),
    ` ${num(used)} / ${num(offered)} ${unit} (${Math.round(pct)}%)`);
}

export function mount(main) {
  const control = h('section', { 'aria-label': 'Control nodes' });
  const agents = h('section', { 'aria-label': 'Agents' });
  let stopped = false;

  async function load() {
    try {
      const [info, agentList, controlList] = await Promise.all([
        get('/v2/info'),
        get('/v2/infra/agents'),
        get('/v2/infra/control-nodes'),
      ]);
      if (stopped) return;
      const nodes = controlList.controlNodes;
      const leads = nodes.some((n) => n.leader);
      clear(control, h('h2', {}, `Control nodes (${nodes.length})`),
        h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Node'), h('th', {}, 'Role'), h('th', {}, 'Version'))),
          h('tbody', {}, nodes.map((n) => h('tr', { class: 'control-node', 'data-url': n.url, id: n.self ? 'control-self' : null },
            h('td', { class: 'mono' }, n.hostPort, n.self ? ' (this node)' : ''),
            h('td', {}, n.leader ? h('span', { class: 'badge healthy' }, info.marathon_config.ha ? 'leader' : 'leader (single node)') : 'follower'),
            h('td', {}, n.self ? info.buildref : ''))))),
        leads ? null : h('p', { class: 'error' }, 'No leader is elected right now: writes wait until one is.'));
      const list = agentList.agents;
      const live = list.filter((a) => !a.lost), lost = list.filter((a) => a.lost);
      const row = (a) => h('tr', { class: a.lost ? 'lost' : '', 'data-agent': a.hostname },
        h('td', {}, h('strong', {}, a.hostname), h('br'), h('span', { class: 'muted mono' }, a.address)),
        h('td', {}, a.attributes.datacenter || '–'),
        h('td', {}, a.attributes.rack || '–'),
        h('td', { class: 'mono' }, Object.entries(a.attributes).filter(([k]) => k !== 'datacenter' && k !== 'rack').map(([k, v]) => `${k}=${v}`).join(' ') || '–', a.docker ? ' docker' : ''),
        h('td', {}, usage(a.used.cpus, a.offered.cpus, 'CPUs'), h('br'), usage(a.used.mem, a.offered.mem, 'MiB'), h('br'), usage(a.used.ports, a.offered.ports, 'ports')),
        h('td', {}, a.tasks.length ? h('details', {}, h('summary', {}, `${a.tasks.length} tasks`),
          h('ul', { class: 'plain' }, a.tasks.slice(0, 200).map((t) => {
            const task = store.tasks.get(t);
            return h('li', { class: 'mono' }, task ? h('a', { href: appHref(task.appId) }, t) : t);
          }))) : '0'),
        h('td', {}, a.lost ? h('span', { class: 'badge unhealthy' }, 'lost') : h('span', { class: 'badge healthy' }, 'active'),
          h('br'), h('span', { class: 'muted' }, `seen ${Math.round(a.lastSeenSecondsAgo)} s ago`)));
      const table = (rows) => h('div', { class: 'scroll' }, h('table', {},
        h('thead', {}, h('tr', {}, ['Agent', 'Datacenter', 'Rack', 'Attributes', 'Used / offered', 'Tasks', 'State'].map((t) => h('th', {}, t)))),
        h('tbody', {}, rows.map(row))));
      clear(agents, h('h2', {}, `Agents (${live.length})`), live.length ? table(live) : h('p', { class: 'muted' }, 'No agent is registered.'),
        lost.length ? [h('h2', {}, `Lost agents (${lost.length})`), table(lost)] : null);
    } catch (e) {
      if (!stopped) { clear(agents, h('p', { class: 'error' }, e.message)); showError(e); }
    }
  }

  clear(main, h('h1', {}, 'Nodes'), control, agents);
  load();
  const timer = setInterval(load, 3000);
  return () => { stopped = true; clearInterval(timer); };
}
