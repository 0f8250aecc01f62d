// A line diff of two texts (longest common subsequence; app definitions are a few hundred
// lines at most), rendered like `infra deploy --dry-run`: `-` removed, `+` added.

import { h } from './dom.js';

export function diffLines(a, b) {
  const x = a ? a.split('\n') : [], y = b ? b.split('\n') : [];
  const n = x.length, m = y.length;
  // lcs[i][j]: length of the LCS of x[i..] and y[j..].
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) { out.push([' ', x[i]]); i++; j++; }
    else if (lcs[i + 1][j] >= lcs[i][j + 1]) out.push(['-', x[i++]]);
    else out.push(['+', y[j++]]);
  }
  while (i < n) out.push(['-', x[i++]]);
  while (j < m) out.push(['+', y[j++]]);
  return out;
}

// Pretty JSON with keys sorted, so a diff shows changes, not reordering.
export function canonical(value) {
  const sort = (v) => Array.isArray(v) ? v.map(sort)
    : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort(v[k])])) : v;
  return value === undefined ? '' : JSON.stringify(sort(value), null, 2);
}

export function diffView(before, after) {
  const lines = diffLines(canonical(before), canonical(after));
  const changed = lines.some(([op]) => op !== ' ');
  return h('pre', { class: 'diff', 'aria-label': 'Differences' },
    changed ? lines.map(([op, text]) => h('span', { class: op === '+' ? 'add' : op === '-' ? 'del' : 'same' }, `${op} ${text}\n`))
      : 'No changes.');
}

// The fields a user writes in a definition: the read-only ones the API adds are dropped.
const READ_ONLY = ['tasks', 'tasksRunning', 'tasksStaged', 'tasksHealthy', 'tasksUnhealthy', 'deployments',
  'lastTaskFailure', 'version', 'versionInfo', 'readinessCheckResults', 'taskStats', 'counts'];
export function definitionOf(app) {
  const def = { ...app };
  for (const k of READ_ONLY) delete def[k];
  return def;
}
