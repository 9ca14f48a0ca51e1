// Config access keys (module-config admin routes): an app's keys, secrets masked as the
// module lists them; create one (its secret shown once, in this page only, until the
// page is left), enable/disable, delete (confirmed). Drawn on the config app page by
// app.js (`widgets.accessKeys`).
'use strict';

(() => {
  const { h, api, enc, badge, ask, act, empty, loadingBox, errorBox, CONFIG } = window.apollo;

  function accessKeys(app) {
    const path = `${CONFIG}/admin/apps/${enc(app)}/accesskeys`;
    const created = h('div', { id: 'accesskey-created', 'aria-live': 'polite' });
    const listing = h('div', {}, loadingBox('Loading access keys…'));
    const create = h('button.primary', { type: 'button', id: 'accesskey-create', text: 'Create access key' });
    const element = h('section.card', { 'aria-labelledby': 'accesskeys-title' },
      h('h2', { id: 'accesskeys-title', text: 'Access keys' }),
      h('p.muted', { text: 'With an enabled key, clients of this app must sign their requests (HMAC-SHA1); without one the app is open.' }),
      created, listing, h('div.actions', {}, create));

    async function load() {
      let keys;
      try { keys = await api('GET', path); } catch (e) { if (e.status !== 401) listing.replaceChildren(errorBox(e)); return; }
      if (keys.length === 0) { listing.replaceChildren(empty('No access keys: clients read without signing.')); return; }
      listing.replaceChildren(h('div.table-wrap', {}, h('table.stack', { id: 'accesskeys' },
        h('thead', {}, h('tr', {}, ['Key id', 'Secret', 'Mode', 'State', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', {}, keys.map((k) => {
          const toggle = h('button', { type: 'button', 'data-action': 'toggle', text: k.enabled ? 'Disable' : 'Enable', 'aria-label': `${k.enabled ? 'Disable' : 'Enable'} key ${k.id}` });
          toggle.addEventListener('click', async () => {
            const done = await act(toggle, `Key ${k.id} ${k.enabled ? 'disabled' : 'enabled'}`, () => api('PUT', `${path}/${enc(k.id)}`, { enabled: !k.enabled }));
            if (done !== undefined) load();
          });
          const del = h('button.danger', { type: 'button', 'data-action': 'delete', text: 'Delete', 'aria-label': `Delete key ${k.id}` });
          del.addEventListener('click', async () => {
            if (!await ask({ title: `Delete key ${k.id}?`, message: 'Clients signing with it are refused (401) while the app has other enabled keys.', ok: 'Delete', danger: true })) return;
            const done = await act(del, `Key ${k.id} deleted`, () => api('DELETE', `${path}/${enc(k.id)}`));
            if (done !== undefined) load();
          });
          return h('tr', { 'data-accesskey': k.id },
            h('td', { 'data-label': 'Key id' }, h('code', { text: k.id })),
            // The module lists only the secret's first characters; never more here.
            h('td', { 'data-label': 'Secret' }, h('code', { class: 'masked', text: k.secret })),
            h('td', { 'data-label': 'Mode', text: k.mode === 1 ? 'observe only' : 'enforced' }),
            h('td', { 'data-label': 'State', class: 'state' }, badge(k.enabled ? 'enabled' : 'disabled', k.enabled ? 'ok' : 'info')),
            h('td', { 'data-label': 'Actions' }, h('div.actions', {}, toggle, del)));
        })))));
    }

    create.addEventListener('click', async () => {
      const key = await act(create, 'Access key created', () => api('POST', path, {}));
      if (key === undefined) return;
      // The only time the secret is shown: the module keeps it for signing checks but
      // lists it masked from now on.
      const dismiss = h('button', { type: 'button', id: 'accesskey-dismiss', text: 'I have copied it' });
      dismiss.addEventListener('click', () => created.replaceChildren());
      created.replaceChildren(h('div.secret-once', { role: 'status' },
        h('b', { text: `Secret of key ${key.id}` }), h('code', { id: 'accesskey-secret', text: key.secret }),
        h('p.muted', { text: 'Copy it now: it is not shown again.' }), dismiss));
      dismiss.focus();
      load();
    });

    load();
    return { element };
  }

  window.apollo.widgets.accessKeys = accessKeys;
})();
