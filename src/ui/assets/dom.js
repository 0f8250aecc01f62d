// Small DOM helpers shared by the pages: element building, formatting, app status,
// error display and the confirmation dialog.

// h('div', {class: 'x', onclick: fn}, child, 'text', [more]) -> an element.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const appHref = (id) => '#/app' + id;
export const num = (x, digits = 2) => (x === undefined || x === null ? '–' : String(+Number(x).toFixed(digits)));

// "3 min ago" for an ISO time; the full time goes in the title.
export function ago(iso) {
  if (!iso) return '–';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

// The app's status as the Apps page shows it (Marathon's UI rules).
export function appStatus(app, queued) {
  if (queued && queued.delay && queued.delay.timeLeftSeconds > 0) return 'Delayed';
  if (app.deployments && app.deployments.length) return queued ? 'Waiting' : 'Deploying';
  if (app.instances === 0 && !app.tasksRunning) return 'Suspended';
  return 'Running';
}

// Healthy, unhealthy, staged, unknown and over-capacity counts of an app.
export function healthParts(app) {
  const running = app.tasksRunning || 0;
  const healthy = app.tasksHealthy || 0;
  const unhealthy = app.tasksUnhealthy || 0;
  const staged = app.tasksStaged || 0;
  const over = Math.max(0, running + staged - (app.instances || 0));
  const unknown = Math.max(0, running - healthy - unhealthy - over);
  return { healthy, unhealthy, staged, unknown, over };
}

export function healthBar(app) {
  const p = healthParts(app);
  const total = Math.max(app.instances || 0, p.healthy + p.unhealthy + p.staged + p.unknown + p.over, 1);
  const bar = h('span', {
    class: 'bar',
    role: 'img',
    'aria-label': `${p.healthy} healthy, ${p.unhealthy} unhealthy, ${p.staged} staged, ${p.unknown} unknown, ${p.over} over capacity`,
  });
  for (const k of ['healthy', 'unhealthy', 'staged', 'unknown', 'over']) {
    if (p[k]) bar.append(h('span', { class: 'seg ' + k, style: { width: (100 * p[k]) / total + '%' } }));
  }
  bar.title = bar.getAttribute('aria-label');
  return bar;
}

export function imageOrCmd(app) {
  const docker = app.container && app.container.docker;
  if (docker && docker.image) return docker.image;
  if (app.cmd) return app.cmd;
  if (app.args) return app.args.join(' ');
  return '';
}

// An error banner at the top of the page (dismissable); API errors land here unless the
// page shows them next to what caused them.
export function showError(error) {
  const box = document.getElementById('errors');
  const msg = h('div', { class: 'error' },
    h('span', { text: error && error.message ? error.message : String(error) }),
    h('button', { class: 'link', 'aria-label': 'Dismiss', onclick: () => msg.remove() }, '×'));
  box.append(msg);
  while (box.children.length > 5) box.firstChild.remove();
}

// The confirmation dialog: resolves true when the user confirms.
export function confirmDialog(text, okLabel = 'OK') {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = okLabel;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}

// Runs an action of a button: disables it meanwhile, reports errors in the page.
export async function act(button, fn) {
  if (button) button.disabled = true;
  try {
    return await fn();
  } catch (e) {
    showError(e);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}
