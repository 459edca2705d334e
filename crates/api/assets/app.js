// Weir console: the little JavaScript the server-rendered pages need.
//
// Forms and buttons send JSON to the same /v1 API the CLI uses, carrying the
// session's CSRF token; the API's validation errors are shown next to the
// field they name. Nothing here builds HTML from data: text only ever goes in
// through textContent, so a resource named <script> stays text.
(() => {
  'use strict';

  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.getAttribute('content') : '';
  const FLASH = 'weir.flash';

  async function api(method, url, body) {
    const headers = { 'X-CSRF-Token': csrf, Accept: 'application/json' };
    const init = { method, headers, credentials: 'same-origin' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let r;
    try {
      r = await fetch(url, init);
    } catch (e) {
      return { ok: false, status: 0, data: { error: { message: 'The server did not answer: ' + e.message } } };
    }
    if (r.status === 401) {
      // The session ended (signed out elsewhere, expired, server restarted):
      // sign in again and come back here.
      window.location.assign('/sign-in?next=' + encodeURIComponent(window.location.pathname + window.location.search));
      return new Promise(() => {});
    }
    const text = await r.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = null; }
    }
    if (!r.ok && !(data && data.error)) {
      data = { error: { message: 'The server answered ' + r.status + '.' } };
    }
    return { ok: r.ok, status: r.status, data };
  }

  // ---- messages -------------------------------------------------------

  function flash(text, kind) {
    const el = document.getElementById('flash');
    if (!el) return;
    el.textContent = text;
    el.className = 'flash ' + (kind || 'info');
    el.hidden = !text;
  }

  // A message that survives the reload that follows an action.
  function flashNext(text, kind) {
    try { sessionStorage.setItem(FLASH, JSON.stringify([text, kind || 'info'])); } catch (_) { /* private mode */ }
  }

  function showPendingFlash() {
    let v = null;
    try { v = sessionStorage.getItem(FLASH); sessionStorage.removeItem(FLASH); } catch (_) { v = null; }
    if (!v) return;
    try { const [t, k] = JSON.parse(v); flash(t, k); } catch (_) { /* ignore */ }
  }

  function confirmDialog(message) {
    const d = document.getElementById('confirm-dialog');
    if (!d || typeof d.showModal !== 'function') return Promise.resolve(window.confirm(message));
    d.querySelector('.msg').textContent = message;
    return new Promise((resolve) => {
      d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
      d.returnValue = '';
      d.showModal();
    });
  }

  function after(then, data) {
    // A fresh load of the page, not a reload: browsers refill a reloaded
    // page's forms with what was typed before, which would show stale input
    // (and, for a list of rows, in another row's form).
    if (!then || then === 'reload') { window.location.replace(window.location.href); return; }
    const id = data && data.id ? data.id : '';
    window.location.assign(then.replace('{id}', encodeURIComponent(id)));
  }

  // ---- reading forms --------------------------------------------------

  function setPath(obj, path, value) {
    const parts = path.split('.');
    let o = obj;
    for (let i = 0; i < parts.length - 1; i++) {
      if (o[parts[i]] === undefined || o[parts[i]] === null || typeof o[parts[i]] !== 'object') o[parts[i]] = {};
      o = o[parts[i]];
    }
    o[parts[parts.length - 1]] = value;
  }

  // A control's value as JSON; `undefined` means "leave the field out".
  function valueOf(el, patch) {
    const type = el.dataset.type || '';
    if (el.type === 'checkbox') return el.checked;
    if (el.multiple) return Array.from(el.selectedOptions).map((o) => o.value);
    const raw = el.value;
    const v = el.tagName === 'TEXTAREA' ? raw : raw.trim();
    if (v === '') {
      if ('nullable' in el.dataset) return patch ? null : undefined;
      if (type === 'int' || type === 'float') return undefined;
      if (type === 'list') return [];
    }
    if (type === 'int' && /^[+-]?\d+$/.test(v)) return Number(v);
    if (type === 'float' && v !== '' && !Number.isNaN(Number(v))) return Number(v);
    if (type === 'bool') return v === 'true';
    if (type === 'list') return v.split(/[\s,]+/).filter((s) => s);
    // Anything that does not parse goes as typed: the API names the field.
    return v;
  }

  function readControls(root, attr, patch, skipRows) {
    const out = {};
    root.querySelectorAll('[' + attr + ']').forEach((el) => {
      if (skipRows && el.closest('[data-rows]')) return;
      if (el.closest('template') || 'local' in el.dataset) return;
      const name = el.getAttribute(attr);
      if (el.disabled) {
        if (patch && 'nullable' in el.dataset) setPath(out, name, null);
        return;
      }
      const v = valueOf(el, patch);
      if (v !== undefined) setPath(out, name, v);
    });
    return out;
  }

  function formBody(form) {
    const patch = (form.dataset.method || 'POST').toUpperCase() === 'PATCH';
    const body = readControls(form, 'name', patch, true);
    form.querySelectorAll('[data-rows]').forEach((box) => {
      const rows = Array.from(box.querySelectorAll(':scope > .row')).map((row) => readControls(row, 'data-field', false, false));
      setPath(body, box.dataset.rows, rows);
    });
    return body;
  }

  // ---- showing errors -------------------------------------------------

  function clearErrors(form) {
    form.querySelectorAll('.err').forEach((e) => { e.textContent = ''; });
    form.querySelectorAll('[aria-invalid]').forEach((e) => e.removeAttribute('aria-invalid'));
  }

  function slotFor(control) {
    const box = control.closest('.field') || control.parentElement;
    return box ? box.querySelector('.err') : null;
  }

  // The control an error's `field` names: exact, then without list indexes,
  // then its parents (`health_check.path` → `health_check`).
  function findControl(form, field) {
    const m = /^(\w+)\[(\d+)\]\.(.+)$/.exec(field);
    if (m) {
      const box = form.querySelector('[data-rows="' + m[1] + '"]');
      const row = box ? box.querySelectorAll(':scope > .row')[Number(m[2])] : null;
      const c = row ? row.querySelector('[data-field="' + m[3] + '"]') : null;
      if (c) return c;
    }
    const tries = [field, field.replace(/\[\d+\]/g, '')];
    let p = tries[1];
    while (p.includes('.')) { p = p.slice(0, p.lastIndexOf('.')); tries.push(p); }
    for (const t of tries) {
      const c = form.querySelector('[name="' + CSS.escape(t) + '"], [data-error-for="' + CSS.escape(t) + '"]');
      if (c && !c.disabled && !c.closest('[hidden]')) return c;
      const box = form.querySelector('[data-rows="' + CSS.escape(t) + '"]');
      if (box) return box;
    }
    return null;
  }

  function showError(form, error) {
    const message = (error && error.message) || 'The request failed.';
    const control = error && error.field ? findControl(form, error.field) : null;
    const slot = control ? (control.matches('[data-error-for]') ? control : slotFor(control)) : null;
    if (control && slot) {
      slot.textContent = message;
      if (!control.matches('[data-error-for]')) {
        control.setAttribute('aria-invalid', 'true');
        control.focus();
      }
      return;
    }
    const general = form.querySelector('.form-error');
    if (general) general.textContent = message;
    else flash(message, 'error');
  }

  // ---- forms and buttons ----------------------------------------------

  async function submitForm(form) {
    clearErrors(form);
    const method = (form.dataset.method || 'POST').toUpperCase();
    const body = method === 'DELETE' ? undefined : formBody(form);
    const button = form.querySelector('[type="submit"]');
    if (button) button.disabled = true;
    const r = await api(method, form.dataset.api, body);
    if (button) button.disabled = false;
    if (!r.ok) { showError(form, r.data && r.data.error); return; }
    if (form.dataset.done) flashNext(form.dataset.done, 'ok');
    after(form.dataset.then, r.data);
  }

  function batchFailures(data) {
    const failed = (data && data.failed) || [];
    return failed.map((f) => f.id + ': ' + ((f.error && f.error.message) || 'failed')).join('; ');
  }

  async function clickAction(btn) {
    let body;
    if (btn.dataset.body) body = JSON.parse(btn.dataset.body);
    if (btn.dataset.batch) {
      const ids = Array.from(document.querySelectorAll('input[data-select="' + btn.dataset.batch + '"]:checked')).map((c) => c.value);
      if (!ids.length) { flash('Select at least one item first.', 'error'); return; }
      body = Object.assign(body || {}, { ids });
    }
    if (btn.dataset.confirm && !(await confirmDialog(btn.dataset.confirm))) return;
    btn.disabled = true;
    const r = await api((btn.dataset.method || 'POST').toUpperCase(), btn.dataset.api, body);
    btn.disabled = false;
    if (!r.ok) { flash((r.data && r.data.error && r.data.error.message) || 'The request failed.', 'error'); return; }
    const failures = batchFailures(r.data);
    if (failures) flashNext('Some items failed: ' + failures, 'error');
    else if (btn.dataset.done) flashNext(btn.dataset.done, 'ok');
    after(btn.dataset.then, r.data);
  }

  // ---- fields that apply only to some choices ---------------------------

  // data-show="protocol:http,https persistence.mode:custom_cookie": shown
  // (and sent) only while every named control has one of the listed values.
  function applyShows(form) {
    form.querySelectorAll('[data-show]').forEach((el) => {
      const ok = el.dataset.show.split(/\s+/).filter((s) => s).every((cond) => {
        const [name, values] = cond.split(':');
        const c = form.querySelector('[name="' + CSS.escape(name) + '"]');
        const v = c ? (c.type === 'checkbox' ? String(c.checked) : c.value) : '';
        return values.split(',').includes(v);
      });
      el.hidden = !ok;
    });
    // A control is sent only when nothing around it is hidden.
    form.querySelectorAll('[name]').forEach((c) => {
      if (c.closest('template')) return;
      c.disabled = !!c.closest('[data-show][hidden]');
      // A select whose choice was just hidden moves to its first shown one.
      if (c.tagName === 'SELECT' && !c.multiple && c.selectedOptions[0] && c.selectedOptions[0].hidden) {
        const first = Array.from(c.options).find((o) => !o.hidden);
        c.value = first ? first.value : '';
      }
    });
  }

  function addRow(btn) {
    const name = btn.dataset.addRow;
    const form = btn.closest('form') || document;
    const tpl = form.querySelector('template[data-row-template="' + name + '"]');
    const box = form.querySelector('[data-rows="' + name + '"]');
    if (tpl && box) box.appendChild(tpl.content.cloneNode(true));
  }

  // ---- wiring -----------------------------------------------------------

  document.addEventListener('submit', (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.api) return;
    ev.preventDefault();
    submitForm(form);
  });

  document.addEventListener('click', (ev) => {
    const t = ev.target instanceof Element ? ev.target : null;
    if (!t) return;
    const action = t.closest('button[data-api]');
    if (action && !action.closest('form[data-api]')) { ev.preventDefault(); clickAction(action); return; }
    const add = t.closest('button[data-add-row]');
    if (add) { ev.preventDefault(); addRow(add); return; }
    const rm = t.closest('button[data-remove-row]');
    if (rm) { ev.preventDefault(); const row = rm.closest('.row'); if (row) row.remove(); }
  });

  document.addEventListener('change', (ev) => {
    const t = ev.target;
    if (!(t instanceof HTMLElement)) return;
    if (t.matches('input[data-select-all]')) {
      document.querySelectorAll('input[data-select="' + t.dataset.selectAll + '"]').forEach((c) => { c.checked = t.checked; });
    }
    if (t.matches('input[type="file"][data-fill]') && t.files && t.files[0]) {
      const target = t.form && t.form.querySelector('[name="' + CSS.escape(t.dataset.fill) + '"]');
      const reader = new FileReader();
      reader.onload = () => { if (target) target.value = String(reader.result); };
      reader.readAsText(t.files[0]);
    }
    if (t.closest('form')) applyShows(t.closest('form'));
  });

  // Forms show what the server rendered, never what a restored page held.
  document.querySelectorAll('form[data-api]').forEach((f) => f.reset());
  document.querySelectorAll('form').forEach(applyShows);
  showPendingFlash();
})();
