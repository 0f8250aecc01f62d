// The page's entry: hash routing between the pages, the live store, the nav's state.
//   #/apps  #/app/<id>  #/create  #/deployments  #/nodes  #/services

import { start, subscribe, store } from './live.js';
import { showError } from './dom.js';
import * as apps from './apps.js';
import * as app from './app.js';
import * as create from './create.js';
import * as deployments from './deployments.js';
import * as nodes from './nodes.js';
import * as services from './services.js';

const main = document.getElementById('main');
let unmount = null;

function route() {
  const hash = decodeURIComponent(location.hash.slice(1)) || '/apps';
  if (unmount) { unmount(); unmount = null; }
  let page = hash.split('/')[1];
  try {
    if (page === 'app') unmount = app.mount(main, hash.slice('/app'.length) || '/');
    else if (page === 'create') unmount = create.mount(main);
    else if (page === 'deployments') unmount = deployments.mount(main);
    else if (page === 'nodes') unmount = nodes.mount(main);
    else if (page === 'services') unmount = services.mount(main);
    else { page = 'apps'; unmount = apps.mount(main); }
  } catch (e) {
    showError(e);
  }
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.page === page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `infra · ${page}`;
}

window.addEventListener('hashchange', () => { route(); main.focus({ preventScroll: true }); });
window.addEventListener('unhandledrejection', (e) => showError(e.reason));
const count = document.getElementById('deploy-count');
subscribe(() => { count.textContent = store.deployments.length ? String(store.deployments.length) : ''; });
route();
start();
