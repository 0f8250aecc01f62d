// The Deployments page: running deployments with their steps and progress; Rollback
// (`DELETE /v2/deployments/{id}`: the scheduler deploys the previous state back) and Stop
// (`?force=true`: stop where it stands).

import { h, clear, appHref, confirmDialog, act } from './dom.js';
import { api } from './api.js';
import { store, subscribe } from './live.js';

export function deploymentCard(d) {
  const done = Math.max(0, (d.currentStep || 1) - 1);
  const total = d.totalSteps || (d.steps || []).length || 1;
  const cancel = (force) => async (e) => {
    const what = force ? `Stop deployment ${d.id} where it stands?` : `Roll back deployment ${d.id}? The apps return to their previous versions.`;
    if (!(await confirmDialog(what, force ? 'Stop' : 'Roll back'))) return;
    act(e.target, () => api('DELETE', `/v2/deployments/${encodeURIComponent(d.id)}${force ? '?force=true' : ''}`));
  };
  return h('article', { class: 'card deployment', 'data-id': d.id },
    h('header', {}, h('strong', { class: 'mono' }, d.id), ' ', h('span', { class: 'muted' }, d.version)),
    h('p', {}, 'Apps: ', (d.affectedApps || []).map((a, i) => [i ? ', ' : '', h('a', { href: appHref(a) }, a)])),
    h('p', {}, `Step ${d.currentStep} of ${total}`, ' ',
      h('progress', { max: total, value: done, 'aria-label': `step ${d.currentStep} of ${total}` })),
    h('ol', { class: 'steps' }, (d.steps || []).map((s, i) => h('li', { class: i + 1 < d.currentStep ? 'done' : i + 1 === d.currentStep ? 'current' : '' },
      (s.actions || []).map((a) => `${a.action} ${a.app}`).join(', ')))),
    h('div', { class: 'toolbar' },
      h('button', { class: 'rollback', onclick: cancel(false) }, 'Rollback'),
      h('button', { class: 'danger stop', onclick: cancel(true) }, 'Stop')));
}

export function mount(main) {
  const box = h('div', { id: 'deployments' });
  function redraw() {
    if (!store.loaded) { clear(box, store.loadError ? h('p', { class: 'error' }, store.loadError.message) : 'Loading…'); return; }
    clear(box, store.deployments.length ? store.deployments.map(deploymentCard) : h('p', { class: 'muted' }, 'No deployment is running.'));
  }
  clear(main, h('h1', {}, 'Deployments'), box);
  redraw();
  return subscribe(redraw);
}
