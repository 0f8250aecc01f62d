// The page's copy of the cluster: apps, tasks, deployments and the launch queue, loaded
// once from /v2 and then kept current from the event stream. A task's status change is
// applied at once (so a list of 10,000 tasks never reloads for one event); the app it
// belongs to is re-read shortly after, batched, for the fields events do not carry.
// Pages subscribe and re-render what is visible, at most once per animation frame.

import { get, appPath, followEvents, ApiError } from './api.js';

const TERMINAL = new Set(['TASK_KILLED', 'TASK_FAILED', 'TASK_FINISHED', 'TASK_LOST', 'TASK_ERROR',
  'TASK_GONE', 'TASK_DROPPED', 'TASK_GONE_BY_OPERATOR', 'TASK_UNKNOWN']);

export const store = {
  apps: new Map(), // id -> app (counters, definition, lastTaskFailure; tasks kept apart)
  tasks: new Map(), // task id -> task
  tasksByApp: new Map(), // app id -> Set of task ids
  deployments: [],
  queue: new Map(), // app id -> queue entry
  loaded: false,
  tasksLoaded: false, // every task read (until then, counters come from the apps)
  loadError: null,
  revision: 0, // bumped on every change, so pages can tell whether to redraw
};

// Figures the browser tests read (time to first render, time to apply one event).
export const stats = { dataLoadedMs: null, firstRenderMs: null, lastEventApplyMs: null, eventsApplied: 0 };
window.__infraStats = stats;

const listeners = new Set();
let frame = 0;
let pendingSince = null;

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function changed(eventTime) {
  store.revision++;
  if (eventTime !== undefined && pendingSince === null) pendingSince = eventTime;
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    for (const fn of [...listeners]) {
      try { fn(); } catch (e) { console.error(e); }
    }
    if (pendingSince !== null) {
      stats.lastEventApplyMs = performance.now() - pendingSince;
      stats.eventsApplied++;
      pendingSince = null;
    }
  });
}

export const tasksOf = (appId) => [...(store.tasksByApp.get(appId) || [])].map((id) => store.tasks.get(id)).filter(Boolean);

function putTask(task) {
  store.tasks.set(task.id, task);
  let set = store.tasksByApp.get(task.appId);
  if (!set) store.tasksByApp.set(task.appId, (set = new Set()));
  set.add(task.id);
}

function dropTask(id) {
  const task = store.tasks.get(id);
  if (!task) return;
  store.tasks.delete(id);
  const set = store.tasksByApp.get(task.appId);
  if (set) set.delete(id);
}

export function putApp(app) {
  const tasks = app.tasks;
  delete app.tasks;
  store.apps.set(app.id, app);
  if (tasks) {
    for (const id of store.tasksByApp.get(app.id) || []) store.tasks.delete(id);
    store.tasksByApp.set(app.id, new Set());
    for (const t of tasks) putTask(t);
  }
}

function dropApp(id) {
  for (const t of store.tasksByApp.get(id) || []) store.tasks.delete(t);
  store.tasksByApp.delete(id);
  store.apps.delete(id);
}

// The counters of one app from its tasks, as the scheduler counts them.
function recount(appId) {
  const app = store.apps.get(appId);
  if (!app || !store.tasksLoaded) return;
  const checks = (app.healthChecks || []).length > 0;
  let staged = 0, running = 0, healthy = 0, unhealthy = 0;
  for (const t of tasksOf(appId)) {
    if (t.state === 'TASK_STAGING' || t.state === 'TASK_STARTING') staged++;
    if (t.state !== 'TASK_RUNNING') continue;
    running++;
    const results = t.healthCheckResults || [];
    if (checks && results.length) {
      if (results.every((r) => r.alive)) healthy++;
      else unhealthy++;
    }
  }
  Object.assign(app, { tasksStaged: staged, tasksRunning: running, tasksHealthy: healthy, tasksUnhealthy: unhealthy });
}

// Apps first (the Apps page needs only their counters), then every task in the
// background: the page shows up before 10,000 tasks have crossed the wire.
export async function loadAll() {
  try {
    const [apps, deployments, queue] = await Promise.all([
      get('/v2/apps?embed=apps.lastTaskFailure'),
      get('/v2/deployments'),
      get('/v2/queue'),
    ]);
    if (stats.dataLoadedMs === null) stats.dataLoadedMs = performance.now();
    store.apps.clear();
    for (const app of apps.apps) putApp(app);
    store.deployments = deployments;
    setQueue(queue);
    store.loaded = true;
    store.loadError = null;
    changed();
    const { tasks } = await get('/v2/tasks');
    store.tasks.clear();
    store.tasksByApp.clear();
    for (const t of tasks) putTask(t);
    store.tasksLoaded = true;
  } catch (e) {
    store.loadError = e;
  }
  changed();
}

function setQueue(queue) {
  store.queue = new Map((queue.queue || []).map((q) => [q.app && q.app.id, q]));
}

// Re-reading apps, batched: many events for one app cost one request.
const staleApps = new Set();
let appTimer = 0;
function refreshApp(id) {
  if (!id) return;
  staleApps.add(id);
  if (!appTimer) appTimer = setTimeout(refreshStaleApps, 250);
}

async function refreshStaleApps() {
  appTimer = 0;
  const ids = [...staleApps];
  staleApps.clear();
  if (ids.length > 40) return loadAll();
  await Promise.all(ids.map(async (id) => {
    try {
      const { app } = await get(appPath(id));
      putApp(app);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) dropApp(id);
      else console.warn(e);
    }
  }));
  changed();
}

let deployTimer = 0;
function refreshDeployments() {
  if (deployTimer) return;
  deployTimer = setTimeout(async () => {
    deployTimer = 0;
    try {
      const before = new Set(store.deployments.flatMap((d) => d.affectedApps || []));
      const [deployments, queue] = await Promise.all([get('/v2/deployments'), get('/v2/queue')]);
      store.deployments = deployments;
      setQueue(queue);
      for (const d of deployments) for (const a of d.affectedApps || []) before.add(a);
      for (const a of before) refreshApp(a);
      changed();
    } catch (e) {
      console.warn(e);
    }
  }, 150);
}

export function applyEvent(ev) {
  const now = performance.now();
  switch (ev.eventType) {
    case 'status_update_event': {
      if (TERMINAL.has(ev.taskStatus)) dropTask(ev.taskId);
      else {
        const t = store.tasks.get(ev.taskId) || { id: ev.taskId, appId: ev.appId, stagedAt: ev.timestamp };
        Object.assign(t, { state: ev.taskStatus, host: ev.host, ports: ev.ports, version: ev.version, slaveId: ev.slaveId });
        if (ev.taskStatus === 'TASK_RUNNING' && !t.startedAt) t.startedAt = ev.timestamp;
        putTask(t);
      }
      recount(ev.appId);
      refreshApp(ev.appId);
      break;
    }
    case 'health_status_changed_event': {
      const t = store.tasks.get(ev.taskId || ev.instanceId);
      if (t) t.healthCheckResults = [{ alive: ev.alive }];
      recount(ev.appId);
      refreshApp(ev.appId);
      break;
    }
    case 'app_terminated_event':
      dropApp(ev.appId);
      refreshDeployments();
      break;
    case 'api_post_event':
      if (ev.appDefinition && ev.appDefinition.id) refreshApp(ev.appDefinition.id);
      refreshDeployments();
      break;
    case 'failed_health_check_event':
      refreshApp(ev.appId);
      break;
    case 'deployment_info':
    case 'deployment_step_success':
    case 'deployment_success':
    case 'deployment_failed':
      refreshDeployments();
      break;
    default:
      return;
  }
  changed(now);
}

// Starts following the event stream; after a gap, everything is re-read.
export function start() {
  const badge = document.getElementById('live');
  let wasDown = false;
  followEvents(applyEvent, (state) => {
    badge.textContent = state === 'live' ? 'live' : 'reconnecting…';
    badge.className = 'live ' + state;
    if (state === 'down') wasDown = true;
    else if (wasDown) { wasDown = false; loadAll(); refreshDeployments(); }
  });
  return loadAll();
}
