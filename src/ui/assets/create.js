// The Create app page: a form for the common fields and a JSON tab over the same
// definition, a dry-run view with the diff against what runs now (like `infra deploy
// --dry-run`), then Deploy. The scheduler's 422 errors are shown next to their field.

import { h, clear, appHref, act } from './dom.js';
import { api, get, appPath, ApiError } from './api.js';
import { diffView, definitionOf } from './diff.js';
import { jsonEditor, invalidJson, locate } from './app.js';

// Form fields: name, label, the definition path their errors come back under.
const FIELDS = [
  ['id', 'ID', '/id', { placeholder: '/group/app', required: true }],
  ['cmd', 'Command', '/cmd', { placeholder: 'python3 -m http.server $PORT0' }],
  ['image', 'Docker image', '/container', { placeholder: 'nginx:1.25 (leave empty for a command)' }],
  ['cpus', 'CPUs', '/cpus', { type: 'number', step: '0.01', min: '0', value: '0.1' }],
  ['mem', 'Memory (MiB)', '/mem', { type: 'number', step: '1', min: '0', value: '64' }],
  ['instances', 'Instances', '/instances', { type: 'number', step: '1', min: '0', value: '1' }],
  ['ports', 'Ports (comma-separated, 0 = any)', '/portDefinitions', { placeholder: '0' }],
  ['health', 'Health check', '/healthChecks', {}],
  ['healthPath', 'Health check path (HTTP)', '/healthChecks', { placeholder: '/' }],
  ['constraints', 'Constraints (one a line: field:OPERATOR[:value])', '/constraints', {}],
];

function toDefinition(form) {
  const v = (name) => form.elements[name].value.trim();
  const def = { id: v('id') };
  if (v('cmd')) def.cmd = v('cmd');
  if (v('image')) def.container = { type: 'DOCKER', docker: { image: v('image'), network: 'HOST' } };
  for (const k of ['cpus', 'mem', 'instances']) if (v(k) !== '') def[k] = Number(v(k));
  if (v('ports')) def.portDefinitions = v('ports').split(',').map((p) => ({ port: Number(p.trim()) }));
  if (v('health')) {
    const check = { protocol: v('health'), portIndex: 0, gracePeriodSeconds: 30, intervalSeconds: 2, timeoutSeconds: 5, maxConsecutiveFailures: 3 };
    if (v('health') === 'HTTP') check.path = v('healthPath') || '/';
    def.healthChecks = [check];
  }
  const constraints = v('constraints').split('\n').map((l) => l.trim()).filter(Boolean);
  if (constraints.length) def.constraints = constraints.map((l) => l.split(':'));
  return def;
}

function fillForm(form, def) {
  const set = (name, value) => { form.elements[name].value = value === undefined || value === null ? '' : value; };
  set('id', def.id);
  set('cmd', def.cmd);
  set('image', def.container && def.container.docker ? def.container.docker.image : '');
  for (const k of ['cpus', 'mem', 'instances']) set(k, def[k]);
  set('ports', (def.portDefinitions || []).map((p) => p.port).join(', '));
  const check = (def.healthChecks || [])[0];
  set('health', check ? check.protocol : '');
  set('healthPath', check && check.path);
  set('constraints', (def.constraints || []).map((c) => c.join(':')).join('\n'));
}

export function mount(main) {
  const form = h('form', { class: 'app-form', id: 'create-form', novalidate: true, onsubmit: (e) => { e.preventDefault(); review(); } },
    FIELDS.map(([name, label, , attrs]) => {
      let input;
      if (name === 'health') {
        input = h('select', { name, id: 'f-' + name }, ['', 'HTTP', 'TCP', 'COMMAND'].map((p) => h('option', { value: p }, p || 'none')));
      } else if (name === 'constraints') {
        input = h('textarea', { name, id: 'f-' + name, rows: 2, placeholder: 'hostname:UNIQUE' });
      } else {
        input = h('input', { name, id: 'f-' + name, type: 'text', ...attrs });
      }
      return h('div', { class: 'field' }, h('label', { for: 'f-' + name }, label), input,
        h('span', { class: 'field-error', id: 'err-' + name, 'aria-live': 'polite' }));
    }),
    h('button', { type: 'submit', class: 'primary', id: 'review-button' }, 'Review changes'));

  const editor = jsonEditor({ label: 'App definition (JSON)', submitLabel: 'Review changes', onSubmit: async (value) => { fillForm(form, value); await review(value); } });
  const review_box = h('section', { id: 'dry-run', 'aria-label': 'Dry run' });
  const general = h('p', { class: 'error', id: 'create-error', role: 'alert' });
  let tab = 'form';
  const panes = { form, json: editor.el };
  const tabButtons = {};
  const tabs = h('div', { role: 'tablist', class: 'tabs' }, ['form', 'json'].map((t) => (tabButtons[t] = h('button', {
    role: 'tab', type: 'button', id: 'tab-' + t, 'aria-selected': String(t === tab),
    onclick: () => switchTab(t),
  }, t === 'form' ? 'Form' : 'JSON'))));
  const paneBox = h('div', { role: 'tabpanel' }, form);

  function switchTab(t) {
    if (t === tab) return;
    if (t === 'json') editor.area.value = JSON.stringify(toDefinition(form), null, 2);
    else {
      try { fillForm(form, JSON.parse(editor.area.value)); } catch {
        editor.showErrors([invalidJson(editor.area.value)]);
        return;
      }
    }
    tab = t;
    for (const [k, b] of Object.entries(tabButtons)) b.setAttribute('aria-selected', String(k === t));
    clear(paneBox, panes[t]);
  }

  // Puts each of the scheduler's errors next to the form field it names.
  function showFieldErrors(details) {
    for (const [name] of FIELDS) form.querySelector('#err-' + name).textContent = '';
    const rest = [];
    for (const d of details) {
      const field = FIELDS.find(([, , path]) => d.path === path || d.path.startsWith(path + '/'));
      const text = `${d.path}: ${(d.errors || []).join('; ')}`;
      if (field) {
        const el = form.querySelector('#err-' + field[0]);
        el.textContent = (el.textContent ? el.textContent + ' ' : '') + text;
        form.elements[field[0]].setAttribute('aria-invalid', 'true');
      } else rest.push(text);
    }
    general.textContent = rest.join(' ');
  }

  async function review(def = toDefinition(form)) {
    general.textContent = '';
    if (!def.id) { showFieldErrors([{ path: '/id', errors: ['an id is required'] }]); return; }
    const id = def.id.startsWith('/') ? def.id : '/' + def.id;
    let current = null;
    try { current = definitionOf((await get(appPath(id))).app); } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) { general.textContent = e.message; return; }
    }
    const deploy = h('button', { class: 'primary', id: 'deploy-button', type: 'button', onclick: (e) => act(e.target, async () => {
      try {
        if (current) await api('PUT', appPath(id) + '?partialUpdate=false', def);
        else await api('POST', '/v2/apps', def);
        location.hash = appHref(id);
      } catch (err) {
        if (err instanceof ApiError && err.details.length) {
          showFieldErrors(err.details);
          editor.showErrors(err.details.flatMap((d) => (d.errors || []).map((m) => ({ path: d.path, message: m, ...locate(editor.area.value, d.path) }))));
          clear(review_box);
        } else general.textContent = err.message;
      }
    }) }, current ? `Deploy new version of ${id}` : `Create ${id}`);
    clear(review_box, h('h2', {}, 'Dry run'),
      h('p', {}, current ? `${id} exists; deploying replaces its definition:` : `${id} is new; it will be created:`),
      diffView(current || undefined, def), deploy);
    deploy.focus();
  }

  clear(main, h('h1', {}, 'Create app'), tabs, paneBox, general, review_box);
  return () => {};
}
