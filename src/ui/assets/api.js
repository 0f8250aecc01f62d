// The scheduler's public /v2 API, the same the CLI uses. A 401 answer opens the token
// dialog and the request is retried with `Authorization: Bearer <token>`; the token is kept
// for this browser tab only (sessionStorage).

const TOKEN_KEY = 'infra-api-token';
let token = sessionStorage.getItem(TOKEN_KEY) || '';
let asking = null;

export class ApiError extends Error {
  constructor(status, body, message) {
    super(message);
    this.status = status;
    this.body = body;
  }
  // Marathon's error details: [{path: '/cpus', errors: ['...']}].
  get details() {
    return (this.body && Array.isArray(this.body.details)) ? this.body.details : [];
  }
}

function messageOf(method, path, status, body) {
  let text = typeof body === 'string' ? body : (body && body.message) || '';
  if (body && Array.isArray(body.details) && body.details.length) {
    text += ': ' + body.details.map((d) => `${d.path} ${(d.errors || []).join('; ')}`).join(', ');
  }
  return `${method} ${path} failed (${status})${text ? ': ' + text : ''}`;
}

// One dialog however many requests got 401 at once.
function askToken() {
  if (!asking) {
    asking = new Promise((resolve, reject) => {
      const dialog = document.getElementById('token');
      const input = document.getElementById('token-input');
      input.value = '';
      dialog.returnValue = '';
      dialog.showModal();
      dialog.addEventListener('close', () => {
        asking = null;
        if (dialog.returnValue === 'ok' && input.value.trim()) {
          token = input.value.trim();
          sessionStorage.setItem(TOKEN_KEY, token);
          resolve(token);
        } else reject(new ApiError(401, null, 'The scheduler asks for a token; none was given.'));
      }, { once: true });
    });
  }
  return asking;
}

// X-Requested-With: the scheduler then challenges a 401 with Bearer only, so the browser
// does not open its own Basic login prompt over the page's token dialog.
export function authHeaders() {
  const scripted = { 'X-Requested-With': 'infra-ui' };
  return token ? { ...scripted, Authorization: 'Bearer ' + token } : scripted;
}

// Sends a request; resolves to {data, status, headers}, rejects with ApiError.
// `body` may be a string (sent as is, e.g. the JSON editor's text) or a value.
export async function api(method, path, body) {
  for (;;) {
    const headers = { Accept: 'application/json', ...authHeaders() };
    const init = { method, headers };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, null, `${method} ${path}: cannot reach the scheduler (${e.message})`);
    }
    if (res.status === 401) {
      await askToken();
      continue;
    }
    const text = await res.text();
    let data = text;
    try { data = text ? JSON.parse(text) : null; } catch { /* plain text answer */ }
    if (!res.ok) throw new ApiError(res.status, data, messageOf(method, path, res.status, data));
    return { data, status: res.status, headers: res.headers };
  }
}

export const get = (path) => api('GET', path).then((r) => r.data);

// `/v2/apps/<id>` for an app id like `/shop/web` (segments encoded, slashes kept).
export const appPath = (id) => '/v2/apps' + id.split('/').map(encodeURIComponent).join('/');

// Follows `/v2/events` (server-sent events) with fetch rather than EventSource, so the
// token header can be sent. Calls onEvent(object) per event and onState('live' | 'down');
// reconnects with backoff. Returns a function that stops it.
export function followEvents(onEvent, onState) {
  let stopped = false;
  let controller = null;
  let wait = 500;
  (async function loop() {
    while (!stopped) {
      controller = new AbortController();
      try {
        const res = await fetch('/v2/events', {
          headers: { Accept: 'text/event-stream', ...authHeaders() },
          signal: controller.signal,
        });
        if (res.status === 401) {
          await askToken();
          continue;
        }
        if (!res.ok || !res.body) throw new Error(`/v2/events answered ${res.status}`);
        onState('live');
        wait = 500;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let end;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
            if (!data) continue;
            try { onEvent(JSON.parse(data)); } catch (e) { console.warn('bad event', e, data); }
          }
        }
      } catch (e) {
        if (stopped) return;
        console.warn('event stream:', e);
      }
      if (stopped) return;
      onState('down');
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(wait * 2, 10000);
    }
  })();
  return () => { stopped = true; if (controller) controller.abort(); };
}
