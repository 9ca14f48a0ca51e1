// Config gray release (module-config's Open API, as in Ctrip): a namespace's gray branch,
// its overriding items (items of the branch cluster), its rules (client app id + IPs +
// labels, `*` for all), gray publish, merge into master (released), abandon. Drawn on the
// namespace page by app.js (`widgets.grayBranch`).
'use strict';

(() => {
  const { h, api, enc, badge, ask, act, empty, loadingBox, errorBox, configItemPath, CONFIG } = window.apollo;
  const list = (text) => text.split(',').map((s) => s.trim()).filter(Boolean);

  function grayBranch({ app, cluster, ns, env, base, user, onRelease }) {
    const body = h('div', { id: 'gray' }, loadingBox('Loading the gray branch…'));
    const element = h('section.card', { 'aria-labelledby': 'gray-title' }, h('h2', { id: 'gray-title', text: 'Gray release' }), body);

    function noBranch() {
      const create = h('button.primary', { type: 'button', id: 'gray-create', text: 'Create gray branch' });
      create.addEventListener('click', async () => {
        const made = await act(create, 'Gray branch created', () => api('POST', `${base}/branches?operator=${enc(user)}`));
        if (made !== undefined) refresh();
      });
      body.replaceChildren(empty('No gray branch: create one to give some clients other values before everyone gets them.'),
        h('div.actions', {}, create));
    }

    function overrides(branchBase, items) {
      const key = h('input', { id: 'gray-key', required: true, autocomplete: 'off' });
      const value = h('textarea', { id: 'gray-value', rows: 2 });
      const error = h('p.error', { id: 'gray-item-error', role: 'alert', tabindex: '-1', hidden: true });
      const save = h('button.primary', { type: 'submit', id: 'gray-item-save', text: 'Save override' });
      const form = h('form', { id: 'gray-item-form', 'aria-label': 'Override an item in the branch' }, error,
        h('div.row', {},
          h('div', {}, h('label', { for: 'gray-key', text: 'Key' }), key),
          h('div', {}, h('label', { for: 'gray-value', text: 'Value in the branch' }), value)),
        h('div.actions', {}, save));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        error.hidden = true;
        const k = key.value.trim();
        save.disabled = true;
        try {
          await api('PUT', `${configItemPath(branchBase, k)}?createIfNotExists=true`,
            { key: k, value: value.value, dataChangeCreatedBy: user, dataChangeLastModifiedBy: user });
          refresh();
        } catch (e) {
          if (e.status === 401) return;
          error.textContent = e.message; // the module's reason (a format error: line and column)
          error.hidden = false;
          error.focus();
        } finally { save.disabled = false; }
      });
      const table = items.length === 0 ? empty('No override yet: the branch serves the master values.')
        : h('div.table-wrap', {}, h('table.stack', { id: 'gray-items' },
          h('thead', {}, h('tr', {}, ['Key', 'Branch value', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
          h('tbody', {}, items.map((it) => {
            const edit = h('button', { type: 'button', text: 'Edit', 'aria-label': `Edit the override of ${it.key}` });
            edit.addEventListener('click', () => { key.value = it.key; value.value = it.value; value.focus(); });
            const del = h('button.danger', { type: 'button', text: 'Delete', 'aria-label': `Delete the override of ${it.key}` });
            del.addEventListener('click', async () => {
              if (!await ask({ title: `Delete the override of ${it.key}?`, message: 'The branch serves the master value again after its next gray release.', ok: 'Delete', danger: true })) return;
              await act(del, `Override ${it.key} deleted`, () => api('DELETE', `${configItemPath(branchBase, it.key)}?operator=${enc(user)}`));
              refresh();
            });
            return h('tr', { 'data-gray-item': it.key },
              h('td', { 'data-label': 'Key' }, h('code', { text: it.key })),
              h('td', { 'data-label': 'Branch value' }, h('code', { text: it.value })),
              h('td', { 'data-label': 'Actions' }, h('div.actions', {}, edit, del)));
          }))));
      return [h('h3', { text: 'Overrides' }), table, form];
    }

    function rules(branchPath, ruleItems) {
      const saveRules = (next, button, what) => act(button, what, () => api('PUT', `${branchPath}/rules?operator=${enc(user)}`, { ruleItems: next }));
      const clientApp = h('input', { id: 'gray-rule-app', required: true, autocomplete: 'off', 'aria-describedby': 'gray-rule-app-hint' });
      const ips = h('input', { id: 'gray-rule-ips', autocomplete: 'off', 'aria-describedby': 'gray-rule-ips-hint' });
      const labels = h('input', { id: 'gray-rule-labels', autocomplete: 'off', 'aria-describedby': 'gray-rule-labels-hint' });
      const add = h('button.primary', { type: 'submit', id: 'gray-rule-add', text: 'Add rule' });
      const form = h('form', { id: 'gray-rule-form', 'aria-label': 'Add a gray rule' },
        h('div.row', {},
          h('div', {}, h('label', { for: 'gray-rule-app', text: 'Client app id' }), clientApp,
            h('small.muted', { id: 'gray-rule-app-hint', text: 'the app id the client sends' })),
          h('div', {}, h('label', { for: 'gray-rule-ips', text: 'Client IPs' }), ips,
            h('small.muted', { id: 'gray-rule-ips-hint', text: 'comma-separated, * for all' })),
          h('div', {}, h('label', { for: 'gray-rule-labels', text: 'Client labels' }), labels,
            h('small.muted', { id: 'gray-rule-labels-hint', text: 'comma-separated, optional' }))),
        h('div.actions', {}, add));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const rule = { clientAppId: clientApp.value.trim(), clientIpList: list(ips.value), clientLabelList: list(labels.value) };
        const done = await saveRules([...ruleItems, rule], add, 'Gray rule added');
        if (done !== undefined) refresh();
      });
      const table = ruleItems.length === 0 ? empty('No rule: no client gets the branch yet.')
        : h('div.table-wrap', {}, h('table.stack', { id: 'gray-rules' },
          h('thead', {}, h('tr', {}, ['Client app', 'IPs', 'Labels', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
          h('tbody', {}, ruleItems.map((r, i) => {
            const del = h('button.danger', { type: 'button', text: 'Remove', 'aria-label': `Remove the rule for ${r.clientAppId}` });
            del.addEventListener('click', async () => {
              const done = await saveRules(ruleItems.filter((_, j) => j !== i), del, 'Gray rule removed');
              if (done !== undefined) refresh();
            });
            return h('tr', {},
              h('td', { 'data-label': 'Client app' }, h('code', { text: r.clientAppId })),
              h('td', { 'data-label': 'IPs', text: (r.clientIpList || []).join(', ') || '–' }),
              h('td', { 'data-label': 'Labels', text: (r.clientLabelList || []).join(', ') || '–' }),
              h('td', { 'data-label': 'Actions' }, del));
          }))));
      return [h('h3', { text: 'Rules' }), h('p.muted', { text: 'A client gets the branch when its app id matches and one of its IPs or labels does.' }), table, form];
    }

    function actions(branch, branchPath) {
      const title = (what) => ({ name: 'title', label: 'Release title', value: `${what} ${new Date().toISOString().slice(0, 19)}`, required: true });
      const release = h('button.primary', { type: 'button', id: 'gray-release', text: 'Gray release…' });
      release.addEventListener('click', async () => {
        const v = await ask({ title: `Gray release of ${ns}`, message: `The branch's values go to the clients its rules match.`, ok: 'Gray release', fields: [title('gray')] });
        if (!v) return;
        await act(release, 'Gray released', () => api('POST', `${branchPath}/releases`, { releaseTitle: v.title, releasedBy: user }));
        refresh(); onRelease();
      });
      const merge = h('button', { type: 'button', id: 'gray-merge', text: 'Merge to master…' });
      merge.addEventListener('click', async () => {
        const v = await ask({ title: `Merge ${branch} into master?`, message: 'The overrides become the master items and are released to every client; the branch is deleted.', ok: 'Merge and release', fields: [title('merge')] });
        if (!v) return;
        await act(merge, 'Branch merged and released', () => api('POST', `${branchPath}/merge?deleteBranch=true`, { releaseTitle: v.title, releasedBy: user }));
        refresh(); onRelease();
      });
      const abandon = h('button.danger', { type: 'button', id: 'gray-abandon', text: 'Abandon…' });
      abandon.addEventListener('click', async () => {
        if (!await ask({ title: `Abandon ${branch}?`, message: 'Its clients get the master release again; the overrides and rules are dropped.', ok: 'Abandon', danger: true })) return;
        await act(abandon, 'Gray branch abandoned', () => api('DELETE', `${branchPath}?operator=${enc(user)}`));
        refresh(); onRelease();
      });
      return h('div.actions', {}, release, merge, abandon);
    }

    async function refresh() {
      let branch;
      try {
        branch = await api('GET', `${base}/branches`);
      } catch (e) { if (e.status !== 401) body.replaceChildren(errorBox(e)); return; }
      if (!branch || !branch.clusterName) { noBranch(); return; }
      const name = branch.clusterName;
      const branchPath = `${base}/branches/${enc(name)}`;
      const branchBase = `${CONFIG}/openapi/v1/envs/${enc(env)}/apps/${enc(app)}/clusters/${enc(name)}/namespaces/${enc(ns)}`;
      let ruleItems = [];
      try {
        const r = await api('GET', `${branchPath}/rules`);
        ruleItems = (r && r.ruleItems) || [];
      } catch (e) { if (e.status !== 404) { body.replaceChildren(errorBox(e)); return; } }
      body.replaceChildren(
        h('p', {}, 'Branch ', h('code', { id: 'gray-branch', text: name }), ' of ', h('code', { text: `${app}/${cluster}/${ns}` }), ' ', badge('gray', 'info')),
        ...overrides(branchBase, branch.items || []), ...rules(branchPath, ruleItems), h('h3', { text: 'Publish' }), actions(name, branchPath));
    }

    return { element, refresh };
  }

  window.apollo.widgets.grayBranch = grayBranch;
})();
