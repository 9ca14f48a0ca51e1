// KV page (module-catalog): the Consul key/value store under the admin mount
// (`/api/module/catalog/v1/kv/...`): list keys by prefix, view a value, write one, delete
// one (confirmed). Values are shown as text; they are whatever clients stored.
'use strict';

(() => {
  const { h, api, enc, ask, act, toast, empty, loadingBox, errorBox, moduleLoaded } = window.apollo;
  const KV = '/api/module/catalog/v1/kv';
  /** A key's path below KV: every segment encoded, the slashes kept. */
  const keyPath = (key) => key.split('/').map(enc).join('/');

  function kv(main) {
    main.append(h('nav.crumbs', { 'aria-label': 'Breadcrumb' }, h('a', { href: '#/catalog', text: 'Catalog' }), '›', h('span', { text: 'KV' })),
      h('h1', { text: 'Key/value store' }));
    if (!moduleLoaded('catalog')) {
      main.append(empty('module-catalog is not loaded on this host: load module_catalog.so to use its KV store.'));
      return null;
    }
    const prefixInput = h('input', { id: 'kv-prefix', placeholder: 'e.g. config/', autocomplete: 'off' });
    const search = h('form.card', { id: 'kv-search', role: 'search', 'aria-label': 'Keys by prefix' },
      h('div.row', {},
        h('div', {}, h('label', { for: 'kv-prefix', text: 'Prefix (empty: every key)' }), prefixInput),
        h('div', {}, h('button.primary', { type: 'submit', id: 'kv-list', text: 'List keys' }))));
    const listing = h('div', {}, loadingBox('Loading keys…'));
    const viewer = h('div', { id: 'kv-viewer' });
    const keyInput = h('input', { id: 'kv-key', required: true, autocomplete: 'off' });
    const valueInput = h('textarea', { id: 'kv-value', rows: 4 });
    const saveButton = h('button.primary', { type: 'submit', id: 'kv-save', text: 'Write' });
    const editor = h('form.card', { id: 'kv-form', 'aria-labelledby': 'kv-form-title' },
      h('h2', { id: 'kv-form-title', text: 'Write a key' }),
      h('label', { for: 'kv-key', text: 'Key' }), keyInput,
      h('label', { for: 'kv-value', text: 'Value' }), valueInput,
      h('div.actions', {}, saveButton));
    main.append(search, h('div.grid', {},
      h('section.card', { 'aria-labelledby': 'kv-keys-title' }, h('h2', { id: 'kv-keys-title', text: 'Keys' }), listing),
      h('div', {}, viewer, editor)));

    async function load() {
      const prefix = prefixInput.value;
      listing.replaceChildren(loadingBox('Loading keys…'));
      let keys;
      try {
        keys = await api('GET', `${KV}/${keyPath(prefix)}?keys`);
      } catch (e) {
        // Consul answers 404 when no key has the prefix.
        if (e.status === 404) keys = [];
        else { listing.replaceChildren(errorBox(e)); return; }
      }
      keys = (keys || []).slice().sort();
      if (keys.length === 0) {
        listing.replaceChildren(empty(prefix ? `No key starts with "${prefix}".` : 'The store is empty: write a key with the form.'));
        return;
      }
      listing.replaceChildren(h('div.table-wrap', {}, h('table.stack', { id: 'kv-table' },
        h('thead', {}, h('tr', {}, ['Key', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', {}, keys.map((key) => {
          const view = h('button', { type: 'button', text: 'View', 'data-action': 'view', 'aria-label': `View ${key}` });
          view.addEventListener('click', () => show(key));
          const del = h('button.danger', { type: 'button', text: 'Delete', 'data-action': 'delete', 'aria-label': `Delete ${key}` });
          del.addEventListener('click', () => remove(key, del));
          return h('tr', { 'data-kv': key },
            h('td', { 'data-label': 'Key' }, h('code', { text: key })),
            h('td', { 'data-label': 'Actions' }, h('div.actions', {}, view, del)));
        })))));
    }

    async function show(key) {
      viewer.replaceChildren(h('section.card', {}, loadingBox(`Reading ${key}…`)));
      let value;
      try {
        value = await api('GET', `${KV}/${keyPath(key)}?raw`, undefined, { text: true });
      } catch (e) { viewer.replaceChildren(h('section.card', {}, errorBox(e))); return; }
      const edit = h('button', { type: 'button', id: 'kv-edit', text: 'Edit' });
      edit.addEventListener('click', () => { keyInput.value = key; valueInput.value = value; valueInput.focus(); });
      const card = h('section.card', { 'aria-labelledby': 'kv-value-title', tabindex: '-1' },
        h('div.toolbar', {}, h('h2', { id: 'kv-value-title' }, h('code', { text: key })), edit),
        value === '' ? empty('An empty value.') : h('pre.file', { id: 'kv-content', tabindex: '0', 'aria-label': `Value of ${key}`, text: value }));
      viewer.replaceChildren(card);
      card.focus();
    }

    async function remove(key, button) {
      const ok = await ask({ title: `Delete ${key}?`, message: 'Clients watching it see it go. There is no undo.', ok: 'Delete', danger: true });
      if (!ok) return;
      const done = await act(button, `${key} deleted`, () => api('DELETE', `${KV}/${keyPath(key)}`));
      if (done !== undefined) { viewer.replaceChildren(); load(); }
    }

    search.addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
    editor.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const key = keyInput.value.trim();
      if (!key || key.startsWith('/')) { toast('A key, not starting with "/"', true); keyInput.focus(); return; }
      const written = await act(saveButton, `${key} written`,
        () => api('PUT', `${KV}/${keyPath(key)}`, new Blob([valueInput.value], { type: 'text/plain' })));
      if (written !== undefined) { valueInput.value = ''; load(); show(key); }
    });
    load();
    return null;
  }

  window.apollo.pages.kv = kv;
})();
