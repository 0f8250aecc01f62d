// The app page's "Recent output": the last lines one task wrote to stdout and stderr, from
// `GET /v2/infra/tasks/{id}/output` (the agent sends them with its heartbeats). One task
// at a time, chosen in a list; re-read every 3 s while the page is open (one timer).

import { h, clear } from './dom.js';
import { get, ApiError } from './api.js';

export function outputPanel() {
  const choice = h('select', { id: 'output-task', 'aria-label': 'Task' });
  const body = h('div', { id: 'output-body', 'aria-live': 'polite' });
  const el = h('section', { 'aria-label': 'Recent output' }, h('h2', {}, 'Recent output'),
    h('div', { class: 'toolbar' }, h('label', {}, 'Task ', choice)), body);
  let shown = [];
  let stopped = false;

  const stream = (name, lines) => [h('h3', {}, name),
    lines.length ? h('pre', { class: 'records', id: `output-${name}` }, lines.join('\n'))
      : h('p', { class: 'muted', id: `output-${name}` }, `Nothing on ${name} yet.`)];

  async function load() {
    const taskId = choice.value;
    if (!taskId) { clear(body, h('p', { class: 'muted' }, 'No task is running.')); return; }
    try {
      const out = await get(`/v2/infra/tasks/${encodeURIComponent(taskId)}/output`);
      if (stopped || choice.value !== taskId) return;
      if (out.docker && !out.stdout.length && !out.stderr.length) {
        clear(body, h('p', { class: 'muted' }, 'No output from this container yet (all of it also goes to the log server).'));
        return;
      }
      clear(body, stream('stdout', out.stdout), stream('stderr', out.stderr),
        h('p', { class: 'muted' }, out.receivedSecondsAgo === null ? 'The agent has sent no output for this task yet.'
          : `From ${out.host}, received ${Math.round(out.receivedSecondsAgo)} s ago.`));
    } catch (e) {
      if (stopped || choice.value !== taskId) return;
      // The task ended between the list and this read: the next list update replaces it.
      if (e instanceof ApiError && e.status === 404) clear(body, h('p', { class: 'muted' }, `Task ${taskId} is gone.`));
      else clear(body, h('p', { class: 'error' }, e.message));
    }
  }

  choice.addEventListener('change', load);
  const timer = setInterval(load, 3000);
  return {
    el,
    // The app's task ids, as the task list shows them; the choice stays while its task does.
    setTasks(ids) {
      if (ids.length === shown.length && ids.every((id, i) => id === shown[i])) return;
      const keep = ids.includes(choice.value) ? choice.value : ids[0] || '';
      shown = ids;
      clear(choice, ids.map((id) => h('option', { value: id }, id)));
      choice.value = keep;
      load();
    },
    stop() { stopped = true; clearInterval(timer); },
  };
}
