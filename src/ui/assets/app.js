// One app: status and actions (Scale, Restart, Suspend, Destroy), the deployment in
// progress, the last task failure, its tasks (Kill, Kill & Scale), a task's recent output,
// the configuration as JSON with an editor that submits a new version, and its versions
// with a diff between any two and "apply this version".

import { h, clear, appStatus, healthBar, imageOrCmd, num, ago, showError, confirmDialog, act } from './dom.js';
import { api, get, appPath, ApiError } from './api.js';
import { store, subscribe, tasksOf, putApp } from './live.js';
import { VirtualList } from './vlist.js';
import { diffView, definitionOf } from './diff.js';
import { deploymentCard } from './deployments.js';
import { jsonErrorPlace } from './json.js';
import { outputPanel } from './output.js';

// Where in a JSON text a field of `path` (`/healthChecks/0/path`) is: its line (1-based)
// and offset, found by the last named segment after the previous ones. Approximate but
// good enough to point at the field.
export function locate(text, path) {
  let from = 0;
  for (const seg of path.split('/').filter(Boolean)) {
    if (/^\d+$/.test(seg)) continue;
    const at = text.indexOf(JSON.stringify(seg) + ':', from);
    if (at < 0) break;
    from = at;
  }
  return { line: text.slice(0, from).split('\n').length, offset: from };
}

// The editor's entry for text that is not JSON: where, and what was expected there.
export function invalidJson(text) {
  const at = jsonErrorPlace(text) || { offset: 0, line: 1, column: 1, expected: 'JSON' };
  return { path: 'JSON', line: at.line, offset: at.offset, message: `invalid JSON at line ${at.line}, column ${at.column}: expected ${at.expected}` };
}

// The JSON editor: a textarea, its error list (each error names the field and its line,
// and selects it when clicked), and a submit button.
export function jsonEditor({ label, submitLabel, onSubmit }) {
  const area = h('textarea', { class: 'json', spellcheck: false, rows: 18, 'aria-label': label, id: 'config-editor' });
  const errors = h('ul', { class: 'field-errors', id: 'config-errors', 'aria-live': 'assertive' });
  const button = h('button', { class: 'primary', type: 'button', id: 'config-submit' }, submitLabel);
  const editor = { area, errors, button, dirty: false };
  area.addEventListener('input', () => { editor.dirty = true; });
  const select = (offset) => {
    const end = area.value.indexOf('\n', offset);
    area.focus();
    area.setSelectionRange(offset, end < 0 ? area.value.length : end);
  };
  editor.showErrors = (items) => {
    area.setAttribute('aria-invalid', items.length ? 'true' : 'false');
    clear(errors, items.map(({ path, message, offset, line }) => h('li', {},
      h('button', { class: 'link field', type: 'button', onclick: () => select(offset || 0) }, `${path || '/'} (line ${line})`),
      ' ' + message)));
  };
  button.addEventListener('click', () => act(button, async () => {
    let value;
    try {
      value = JSON.parse(area.value);
    } catch {
      editor.showErrors([invalidJson(area.value)]);
      return;
    }
    try {
      await onSubmit(value, area.value);
      editor.showErrors([]);
      editor.dirty = false;
    } catch (e) {
      if (e instanceof ApiError && e.details.length) {
        editor.showErrors(e.details.flatMap((d) => (d.errors || []).map((msg) => {
          const at = locate(area.value, d.path);
          return { path: d.path, message: msg, line: at.line, offset: at.offset };
        })));
      } else {
        editor.showErrors([{ path: '', line: 1, message: e.message }]);
      }
    }
  }));
  editor.el = h('div', { class: 'editor' }, area, errors, button);
  return editor;
}

export function mount(main, appId) {
  const title = h('h1', { class: 'mono' }, appId);
  const status = h('div', { class: 'app-status', 'aria-live': 'polite' });
  const scaleInput = h('input', { type: 'number', min: 0, id: 'scale-input', 'aria-label': 'Instances', class: 'short' });
  const deployBox = h('section', { 'aria-label': 'Deployment in progress' });
  const failureBox = h('section', { 'aria-label': 'Last task failure' });
  const taskCount = h('span', { class: 'muted', id: 'task-count' });
  const output = outputPanel();

  const app = () => store.apps.get(appId);

  const write = async (body, query = '') => {
    await api('PUT', appPath(appId) + query, body);
  };

  const actions = h('div', { class: 'toolbar actions' },
    h('form', { class: 'inline', onsubmit: (e) => {
      e.preventDefault();
      const n = Number(scaleInput.value);
      act(e.submitter, () => write({ instances: n }));
    } }, h('label', {}, 'Instances ', scaleInput), h('button', { type: 'submit', id: 'scale-button' }, 'Scale')),
    h('button', { id: 'restart-button', onclick: (e) => act(e.target, () => api('POST', appPath(appId) + '/restart')) }, 'Restart'),
    h('button', { id: 'suspend-button', onclick: async (e) => {
      if (await confirmDialog(`Suspend ${appId}: scale it to 0 instances?`, 'Suspend')) act(e.target, () => write({ instances: 0 }));
    } }, 'Suspend'),
    h('button', { class: 'danger', id: 'destroy-button', onclick: async (e) => {
      if (!(await confirmDialog(`Destroy ${appId}? Its tasks are killed and its definition deleted.`, 'Destroy'))) return;
      const ok = await act(e.target, () => api('DELETE', appPath(appId)));
      if (ok) location.hash = '#/apps';
    } }, 'Destroy'));

  const killTask = (task, scale, button) => act(button, () =>
    api('DELETE', `${appPath(appId)}/tasks/${encodeURIComponent(task.id)}${scale ? '?scale=true' : ''}`));

  const tasks = new VirtualList({
    rowHeight: 44,
    label: 'Tasks',
    keyOf: (t) => t.id,
    empty: 'No tasks.',
    renderRow: (t) => {
      const results = t.healthCheckResults || [];
      const health = !results.length ? 'unknown' : results.every((r) => r.alive) ? 'healthy' : 'unhealthy';
      return h('div', { class: 'tasks-grid task' },
        h('span', { class: 'mono', role: 'cell', title: t.id }, t.id),
        h('span', { role: 'cell' }, t.host || '–'),
        h('span', { role: 'cell', class: 'mono' }, (t.ports || []).join(', ')),
        h('span', { role: 'cell' }, h('span', { class: 'badge ' + health }, health)),
        h('span', { role: 'cell', class: 'task-state' }, (t.state || '').replace('TASK_', '').toLowerCase()),
        h('span', { role: 'cell', title: t.startedAt || '' }, ago(t.startedAt)),
        h('span', { role: 'cell', class: 'mono', title: t.version }, (t.version || '').slice(0, 19)),
        h('span', { role: 'cell', class: 'row-actions' },
          h('button', { class: 'small kill', onclick: (e) => killTask(t, false, e.target) }, 'Kill'),
          h('button', { class: 'small kill-scale', onclick: (e) => killTask(t, true, e.target) }, 'Kill & Scale')));
    },
  });

  const editor = jsonEditor({
    label: 'App definition (JSON)',
    submitLabel: 'Submit new version',
    onSubmit: (value, text) => api('PUT', appPath(appId) + '?partialUpdate=false', text),
  });
  let editorVersion = null;
  let shownInstances = null;

  // Versions: pick two, see the diff, apply the older one.
  const fromSel = h('select', { id: 'version-from', 'aria-label': 'Version to compare' });
  const toSel = h('select', { id: 'version-to', 'aria-label': 'Compared with' });
  const diffBox = h('div', { id: 'version-diff' });
  let versionsLoaded = null;
  const showDiff = () => act(null, async () => {
    if (!fromSel.value || !toSel.value) return;
    const [a, b] = await Promise.all([fromSel.value, toSel.value].map((v) => get(`${appPath(appId)}/versions/${encodeURIComponent(v)}`)));
    clear(diffBox, diffView(definitionOf(a), definitionOf(b)));
  });
  fromSel.addEventListener('change', showDiff);
  toSel.addEventListener('change', showDiff);
  const applyButton = h('button', { id: 'apply-version', onclick: async (e) => {
    const v = fromSel.value;
    if (!v || !(await confirmDialog(`Apply version ${v} of ${appId}? This deploys it as a new version.`, 'Apply'))) return;
    act(e.target, async () => {
      const def = await get(`${appPath(appId)}/versions/${encodeURIComponent(v)}`);
      await api('PUT', appPath(appId) + '?partialUpdate=false', definitionOf(def));
    });
  } }, 'Apply this version');
  async function loadVersions() {
    const a = app();
    if (!a || versionsLoaded === a.version) return;
    versionsLoaded = a.version;
    try {
      const { versions } = await get(appPath(appId) + '/versions');
      const keepFrom = fromSel.value, keepTo = toSel.value;
      const opts = (sel, keep, dflt) => {
        clear(sel, versions.map((v) => h('option', { value: v }, v)));
        sel.value = versions.includes(keep) ? keep : dflt;
      };
      opts(fromSel, keepFrom, versions[Math.min(1, versions.length - 1)]);
      opts(toSel, keepTo, versions[0]);
      showDiff();
    } catch (e) { showError(e); }
  }

  function redraw() {
    const a = app();
    if (!a) {
      clear(status, store.loaded ? h('p', { class: 'error' }, `App ${appId} does not exist (or was destroyed).`) : 'Loading…');
      tasks.setItems([]);
      return;
    }
    const st = appStatus(a, store.queue.get(appId));
    clear(status,
      h('span', { class: 'badge ' + st.toLowerCase(), id: 'app-status' }, st), ' ',
      h('span', { id: 'app-instances' }, `${a.tasksRunning || 0} of ${a.instances} running`), ' · ',
      h('span', { id: 'app-healthy' }, `${a.tasksHealthy || 0} healthy`), ' ',
      healthBar(a), ' · ',
      `${num(a.cpus)} CPUs, ${num(a.mem, 0)} MiB`, ' · ',
      h('span', { class: 'mono' }, imageOrCmd(a)));
    // Only when the target changes, so a number being typed is not overwritten by an
    // unrelated update.
    if (shownInstances !== a.instances && document.activeElement !== scaleInput) {
      shownInstances = a.instances;
      scaleInput.value = a.instances;
    }
    const list = tasksOf(appId).sort((x, y) => (x.id < y.id ? -1 : 1));
    taskCount.textContent = `${list.length} tasks`;
    tasks.setItems(list);
    output.setTasks(list.map((t) => t.id));
    const ds = store.deployments.filter((d) => (d.affectedApps || []).includes(appId));
    clear(deployBox, ds.length ? [h('h2', {}, 'Deployment in progress'), ds.map(deploymentCard)] : []);
    const f = a.lastTaskFailure;
    clear(failureBox, f ? [h('h2', {}, 'Last task failure'),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Task'), h('dd', { class: 'mono' }, f.taskId || '–'),
        h('dt', {}, 'State'), h('dd', {}, f.state || '–'),
        h('dt', {}, 'Message'), h('dd', { class: 'mono' }, f.message || '–'),
        h('dt', {}, 'Host'), h('dd', {}, f.host || '–'),
        h('dt', {}, 'When'), h('dd', { title: f.timestamp || '' }, ago(f.timestamp)))] : []);
    if (!editor.dirty && editorVersion !== a.version) {
      editorVersion = a.version;
      editor.area.value = JSON.stringify(definitionOf(a), null, 2);
    }
    loadVersions();
  }

  clear(main,
    h('p', {}, h('a', { href: '#/apps' }, '← Apps')),
    title, status, actions, deployBox, failureBox,
    h('section', { 'aria-label': 'Tasks' }, h('h2', {}, 'Tasks ', taskCount),
      h('div', { class: 'table' }, h('div', { class: 'vrow head tasks-grid', role: 'row' },
        ['Task', 'Host', 'Ports', 'Health', 'State', 'Started', 'Version', ''].map((t) => h('span', { role: 'columnheader' }, t))), tasks.el)),
    output.el,
    h('section', { 'aria-label': 'Configuration' }, h('h2', {}, 'Configuration'),
      h('p', { class: 'muted' }, 'Edit the definition and submit it as a new version (PUT, full replacement). The scheduler\'s validation errors are listed under the editor.'),
      editor.el),
    h('section', { 'aria-label': 'Versions' }, h('h2', {}, 'Versions'),
      h('div', { class: 'toolbar' }, h('label', {}, 'Version ', fromSel), h('label', {}, 'compared with ', toSel), applyButton),
      diffBox));
  redraw();
  // A just-created app may not be in the store yet: read it once.
  if (!app()) {
    get(appPath(appId))
      .then(({ app: a }) => { if (!store.apps.has(a.id)) { putApp(a); redraw(); } })
      .catch((e) => { if (!(e instanceof ApiError && e.status === 404)) showError(e); });
  }
  const unsubscribe = subscribe(redraw);
  return () => { unsubscribe(); output.stop(); };
}
