// Backups page: the archives in app_back_up (`/api/backups`), taking one, downloading,
// restoring (after a confirmation that says what a restore replaces and stops) and
// deleting. A restore's report stays on the page: which services were stopped and
// which came back.
'use strict';

(() => {
  const { h, api, enc, bytes, when, badge, empty, loadingBox, errorBox, ask, act, update } = window.apollo;

  function backups(main) {
    const create = h('button.primary', { type: 'button', id: 'backup-create', text: 'Create backup' });
    main.append(h('div.toolbar', {}, h('h1', { text: 'Backups' }), create),
      h('p.muted', { text: 'A backup holds app_root and app_manager (the models, the apps\' files). Older ones beyond backup.retention are deleted when a new one is written.' }));
    const progress = h('p.loading', { role: 'status', hidden: true });
    const report = h('div', { id: 'restore-report' });
    const body = h('div', {}, loadingBox('Loading backups…'));
    main.append(progress, report, body);
    let list = null;
    let failure = null;

    async function load() {
      try { list = await api('GET', '/api/backups'); failure = null; } catch (e) { failure = e; }
      update();
    }

    /** Long actions (a backup of a large app_root, a restore) say so while they run. */
    async function busy(text, button, what, fn) {
      progress.textContent = text;
      progress.hidden = false;
      try { return await act(button, what, fn); } finally { progress.hidden = true; }
    }

    create.addEventListener('click', async () => {
      const made = await busy('Writing the backup…', create, 'Backup created', () => api('POST', '/api/backups'));
      if (made) await load();
    });

    function showReport(r) {
      const names = (list) => (list && list.length ? list.join(', ') : 'none');
      report.replaceChildren(h('section.card.notice', { 'aria-labelledby': 'restore-title', tabindex: '-1' },
        h('h2', { id: 'restore-title', text: `Restored ${r.id}` }),
        h('dl.kv', {},
          h('dt', { text: 'Unpacked' }), h('dd', { text: `${r.files} files, ${r.dirs} folders, ${r.symlinks} links` }),
          h('dt', { text: 'Stopped for the restore' }), h('dd', { text: names(r.stopped) }),
          h('dt', { text: 'Started again' }), h('dd', { text: names(r.restarted) }),
          h('dt', { text: 'Not started again' }), h('dd', {}, (r.not_restarted || []).length === 0 ? 'none'
            : h('ul', {}, r.not_restarted.map((n) => h('li', {}, h('b', { text: n.name }), ` — ${n.error}`)))),
          h('dt', { text: 'Store' }), h('dd', { text: r.store }))));
      report.firstChild.focus();
    }

    function row(b) {
      const td = (label, content, cls) => h('td', { 'data-label': label, class: cls }, content);
      const restore = h('button.danger', { type: 'button', 'data-key': `restore-${b.id}`, text: 'Restore…', 'aria-label': `Restore ${b.id}`, disabled: !!b.problem });
      restore.addEventListener('click', async () => {
        const ok = await ask({ title: `Restore ${b.id}?`, ok: 'Restore', danger: true,
          message: `app_root and app_manager are replaced by this backup's copy (taken ${when(Date.parse(b.created_at))}); files written since are lost. `
            + 'The running services are stopped for the swap and started again. Take a backup first if unsure.' });
        if (!ok) return;
        const r = await busy(`Restoring ${b.id}…`, restore, `${b.id} restored`, () => api('POST', `/api/backups/${enc(b.id)}/restore`));
        if (r) showReport(r);
        load();
      });
      const del = h('button.danger', { type: 'button', 'data-key': `delete-${b.id}`, text: 'Delete', 'aria-label': `Delete ${b.id}` });
      del.addEventListener('click', async () => {
        if (!await ask({ title: `Delete ${b.id}?`, message: 'The archive file is removed; it cannot be restored afterwards.', ok: 'Delete', danger: true })) return;
        await act(del, `${b.id} deleted`, () => api('DELETE', `/api/backups/${enc(b.id)}`));
        load();
      });
      // A plain link: the browser streams the archive to disk with the session cookie.
      const download = h('a.button', { href: `/api/backups/${enc(b.id)}/download`, download: `${b.id}.tar.gz`, 'aria-label': `Download ${b.id}`, text: 'Download' });
      return h('tr', { 'data-backup': b.id },
        td('Backup', h('span', {}, h('code', { text: b.id }), b.problem ? [h('br'), badge('unreadable', 'error'), ' ', h('span.muted', { text: b.problem })] : null)),
        td('Taken', when(Date.parse(b.created_at)), 'num'),
        td('Size', bytes(b.size_bytes), 'num'),
        td('Files', String(b.files), 'num'),
        td('Services', (b.services || []).length ? b.services.join(', ') : '–'),
        td('Host version', b.host_version || '–'),
        td('Actions', h('div.actions', {}, download, restore, del)));
    }

    function live() {
      if (failure) { body.replaceChildren(errorBox(failure)); return; }
      if (!list) return;
      if (list.length === 0) { body.replaceChildren(empty('No backup yet: create one with the button above (or let the scheduled task do it).')); return; }
      body.replaceChildren(h('div.table-wrap', {}, h('table.stack', { id: 'backups-table' },
        h('thead', {}, h('tr', {}, ['Backup', 'Taken', 'Size', 'Files', 'Services', 'Host version', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', {}, list.map(row)))));
    }

    load();
    return { live, onTask: load };
  }

  window.apollo.pages.backups = backups;
})();
