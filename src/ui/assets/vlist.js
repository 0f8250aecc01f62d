// A virtual list: only the rows in view (plus a few) exist in the DOM, so 10,000 rows
// cost what 40 do. Rows have one fixed height; the list scrolls inside its own box.
// Keyboard focus inside a row survives re-renders (rows are keyed).

import { h } from './dom.js';

const OVERSCAN = 6;

export class VirtualList {
  // renderRow(item) -> element; keyOf(item) -> string.
  constructor({ rowHeight, renderRow, keyOf, label, empty }) {
    this.rowHeight = rowHeight;
    this.renderRow = renderRow;
    this.keyOf = keyOf;
    this.empty = empty || 'Nothing to show.';
    this.items = [];
    this.rows = h('div', { class: 'vrows', role: 'rowgroup' });
    this.el = h('div', { class: 'vlist', role: 'table', 'aria-label': label, 'aria-rowcount': 0 }, this.rows);
    this.queued = false;
    this.el.addEventListener('scroll', () => this.schedule(), { passive: true });
    if (window.ResizeObserver) new ResizeObserver(() => this.schedule()).observe(this.el);
  }

  setItems(items) {
    this.items = items;
    this.el.setAttribute('aria-rowcount', items.length);
    this.render();
  }

  schedule() {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => { this.queued = false; this.render(); });
  }

  render() {
    const { rowHeight: rh, items } = this;
    this.rows.style.height = Math.max(items.length * rh, rh) + 'px';
    if (!items.length) {
      this.rows.replaceChildren(h('div', { class: 'vrow muted empty', role: 'row' }, this.empty));
      return;
    }
    const top = this.el.scrollTop;
    const height = this.el.clientHeight || window.innerHeight;
    const first = Math.max(0, Math.floor(top / rh) - OVERSCAN);
    const last = Math.min(items.length, Math.ceil((top + height) / rh) + OVERSCAN);
    // Where the focus is, to put it back on the same row's same control.
    const active = document.activeElement;
    let focusKey = null, focusIndex = -1;
    if (active && this.rows.contains(active) && active !== this.rows) {
      const row = active.closest('[data-key]');
      if (row) {
        focusKey = row.dataset.key;
        focusIndex = [...row.querySelectorAll('a,button,input,select')].indexOf(active);
      }
    }
    const out = [];
    for (let i = first; i < last; i++) {
      const row = this.renderRow(items[i]);
      row.dataset.key = this.keyOf(items[i]);
      row.setAttribute('role', 'row');
      row.setAttribute('aria-rowindex', i + 1);
      row.classList.add('vrow');
      row.style.top = i * rh + 'px';
      row.style.height = rh + 'px';
      out.push(row);
    }
    this.rows.replaceChildren(...out);
    if (focusKey !== null) {
      const row = this.rows.querySelector(`[data-key="${CSS.escape(focusKey)}"]`);
      const target = row && row.querySelectorAll('a,button,input,select')[focusIndex];
      if (target) target.focus({ preventScroll: true });
    }
  }
}
