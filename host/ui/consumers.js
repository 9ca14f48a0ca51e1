// Config Open API consumers (module-config admin routes): who may call the Open API with
// a token of their own, and what they may do per app (edit, release). A new consumer's
// token is shown once, here, until the page is left; the module stores only its hash.
'use strict';

(() => {
  const { h, api, enc, badge, when, ask, act, empty, loadingBox, errorBox, moduleLoaded, CONFIG } = window.apollo;
  const PATH = `${CONFIG}/admin/consumers`;

  function rights(grant) {
    const out = [];
    if (grant.edit) out.push(badge('edit', 'info'));
    if (grant.release) out.push(badge('release', 'ok'));
    return out.length ? out : [badge('read', 'info')];
  }

  /** App id + edit/release checkboxes, for the create form and the per-consumer scope form. */
  function scopeFields(prefix) {
    const appId = h('input', { id: `${prefix}-app`, required: true, autocomplete: 'off' });
    const edit = h('input', { id: `${prefix}-edit`, type: 'checkbox', checked: true });
    const release = h('input', { id: `${prefix}-release`, type: 'checkbox' });
    const fields = [
      h('div', {}, h('label', { for: `${prefix}-app`, text: 'App id' }), appId),
      h('div', {}, h('label.check', { for: `${prefix}-edit` }, edit, ' may edit')),
      h('div', {}, h('label.check', { for: `${prefix}-release` }, release, ' may release')),
    ];
    return { fields, read: () => ({ app: appId.value.trim(), grant: { edit: edit.checked, release: release.checked } }) };
  }

  function consumers(main) {
    main.append(h('nav.crumbs', { 'aria-label': 'Breadcrumb' }, h('a', { href: '#/config', text: 'Configuration' }), '›', h('span', { text: 'Open API consumers' })),
      h('h1', { text: 'Open API consumers' }));
    if (!moduleLoaded('config')) {
      main.append(empty('module-config is not loaded on this host.'));
      return null;
    }
    const created = h('div', { id: 'consumer-created', 'aria-live': 'polite' });
    const listing = h('div', {}, loadingBox('Loading consumers…'));
    const name = h('input', { id: 'consumer-name', required: true, autocomplete: 'off', pattern: '[A-Za-z0-9_.-]+' });
    const scope = scopeFields('consumer');
    const createButton = h('button.primary', { type: 'submit', id: 'consumer-create', text: 'Create consumer' });
    const form = h('form.card', { id: 'consumer-form', 'aria-labelledby': 'consumer-form-title' },
      h('h2', { id: 'consumer-form-title', text: 'New consumer' }),
      h('div.row', {}, h('div', {}, h('label', { for: 'consumer-name', text: 'Name' }), name), ...scope.fields),
      h('div.actions', {}, createButton));
    main.append(created, h('section.card', { 'aria-labelledby': 'consumers-title' }, h('h2', { id: 'consumers-title', text: 'Consumers' }),
      h('p.muted', { text: 'Tokens are shown once, at creation; the module keeps only their SHA-256.' }), listing), form);

    async function scopeEditor(c, button) {
      const values = await ask({ title: `Rights of ${c.name}`, ok: 'Save rights',
        message: 'The rights on one app (neither: read only).',
        fields: [{ name: 'app', label: 'App id', required: true }, { name: 'edit', label: 'may edit', checkbox: true, value: true },
          { name: 'release', label: 'may release', checkbox: true }] });
      if (!values) return;
      const grant = { edit: values.edit, release: values.release };
      const done = await act(button, `Rights of ${c.name} on ${values.app.trim()} saved`,
        () => api('PUT', `${PATH}/${enc(c.name)}/apps/${enc(values.app.trim())}`, grant));
      if (done !== undefined) load();
    }

    async function load() {
      let list;
      try { list = await api('GET', PATH); } catch (e) { if (e.status !== 401) listing.replaceChildren(errorBox(e)); return; }
      if (list.length === 0) { listing.replaceChildren(empty('No consumers: only the host\'s operators use the Open API.')); return; }
      listing.replaceChildren(h('div.table-wrap', {}, h('table.stack', { id: 'consumers' },
        h('thead', {}, h('tr', {}, ['Name', 'Token', 'Apps and rights', 'Created', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', {}, list.map((c) => {
          const apps = Object.entries(c.apps || {});
          const scopeButton = h('button', { type: 'button', 'data-action': 'scope', text: 'Rights…', 'aria-label': `Set the rights of ${c.name}` });
          scopeButton.addEventListener('click', () => scopeEditor(c, scopeButton));
          const del = h('button.danger', { type: 'button', 'data-action': 'delete', text: 'Delete', 'aria-label': `Delete consumer ${c.name}` });
          del.addEventListener('click', async () => {
            if (!await ask({ title: `Delete consumer ${c.name}?`, message: 'Its token stops working at once.', ok: 'Delete', danger: true })) return;
            const done = await act(del, `Consumer ${c.name} deleted`, () => api('DELETE', `${PATH}/${enc(c.name)}`));
            if (done !== undefined) load();
          });
          return h('tr', { 'data-consumer': c.name },
            h('td', { 'data-label': 'Name' }, h('b', { text: c.name })),
            h('td', { 'data-label': 'Token' }, h('code', { class: 'masked', text: '••••••••' })),
            h('td', { 'data-label': 'Apps and rights', class: 'apps' }, apps.length === 0 ? '–'
              : h('ul.checks', {}, apps.map(([app, grant]) => h('li', {}, h('code', { text: app }), ' ', rights(grant))))),
            // Gson's date (`…+0000`) parses only once its offset has a colon.
            h('td', { 'data-label': 'Created', text: c.created ? when(Date.parse(c.created.replace(/([+-]\d\d)(\d\d)$/, '$1:$2')) || c.created) : '–' }),
            h('td', { 'data-label': 'Actions' }, h('div.actions', {}, scopeButton, del)));
        })))));
    }

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const { app, grant } = scope.read();
      const consumer = await act(createButton, `Consumer ${name.value.trim()} created`,
        () => api('POST', PATH, { name: name.value.trim(), apps: { [app]: grant } }));
      if (consumer === undefined) return;
      // The only time the token is shown.
      const dismiss = h('button', { type: 'button', id: 'consumer-dismiss', text: 'I have copied it' });
      dismiss.addEventListener('click', () => created.replaceChildren());
      created.replaceChildren(h('div.secret-once', { role: 'status' },
        h('b', { text: `Token of ${consumer.name}` }), h('code', { id: 'consumer-token', text: consumer.token }),
        h('p.muted', { text: 'Copy it now: it is not shown again. Clients send it as the Authorization header.' }), dismiss));
      form.reset();
      dismiss.focus();
      load();
    });

    load();
    return null;
  }

  window.apollo.pages.consumers = consumers;
})();
