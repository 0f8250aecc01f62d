// The Services page: for every app, its DNS names and SRV name and the records `dig` would
// get (healthy instances only, as the DNS server answers), and the proxy's routes. From
// `GET /v2/infra/services`, re-read every 3 s while open.

import { h, clear, appHref, showError } from './dom.js';
import { get } from './api.js';
import { store } from './live.js';

export function mount(main) {
  const box = h('div', { id: 'services' });
  let stopped = false;

  async function load() {
    try {
      const data = await get('/v2/infra/services');
      if (stopped) return;
      const listed = new Set(data.services.map((s) => s.appId));
      const idle = [...store.apps.keys()].filter((id) => !listed.has(id));
      clear(box,
        h('p', { class: 'muted' }, `Zone ${data.domain}, datacenter ${data.datacenter}. DNS answers with healthy running tasks only; the proxy routes to the same.`),
        data.services.length ? null : h('p', { class: 'muted' }, 'No app has a running task.'),
        data.services.map((s) => {
          const healthy = s.instances.filter((i) => i.healthy);
          const srv = healthy.flatMap((i) => i.ports.map((p) => `${s.srv}. ${'SRV'} 1 1 ${p} ${i.srvTarget}.`));
          const a = [...new Set(healthy.map((i) => i.address))].map((ip) => `${s.names[0]}. A ${ip}`);
          return h('article', { class: 'card service', 'data-app': s.appId },
            h('header', {}, h('a', { href: appHref(s.appId) }, s.appId), ' ', h('span', { class: 'muted' }, `${healthy.length} of ${s.instances.length} instances answered`)),
            h('dl', { class: 'facts' },
              h('dt', {}, 'DNS names'), h('dd', { class: 'mono' }, s.names.join(', ')),
              h('dt', {}, 'SRV'), h('dd', { class: 'mono' }, s.srv),
              h('dt', {}, 'Proxy'), h('dd', { class: 'mono' }, `path ${s.proxy.path} · host ${s.proxy.hostLabel}.<proxy domain>`)),
            h('pre', { class: 'records', 'aria-label': 'Records' }, [...a, ...srv].join('\n') || '(no healthy instance: NXDOMAIN)'));
        }),
        idle.length ? [h('h2', {}, 'Apps without running tasks'), h('p', { class: 'mono' }, idle.join(', '))] : null);
    } catch (e) {
      if (!stopped) { clear(box, h('p', { class: 'error' }, e.message)); showError(e); }
    }
  }
  clear(main, h('h1', {}, 'Services'), box);
  load();
  const timer = setInterval(load, 3000);
  return () => { stopped = true; clearInterval(timer); };
}
