// Files page: browse app_root through the file manager API (`/api/files`), view a text
// file, upload into the folder shown, download, rename (`POST /api/files/move`) and
// delete (`DELETE /api/files`, after a confirmation). The host confines every path to
// app_root; the page only builds relative paths from the names it was given.
'use strict';

(() => {
  const { h, api, enc, bytes, when, badge, toast, ask, act, empty, loadingBox, errorBox } = window.apollo;
  /** Larger files are offered for download only: the viewer holds the text in the page. */
  const VIEW_LIMIT = 512 * 1024;

  const link = (path) => `#/files/${path.split('/').filter(Boolean).map(enc).join('/')}`;

  function files(main, parts) {
    const dir = parts.filter(Boolean).join('/');
    const crumbs = [h('a', { href: '#/files', text: 'app_root' })];
    parts.filter(Boolean).forEach((p, i, all) => {
      crumbs.push('/', i === all.length - 1 ? h('span', { text: p }) : h('a', { href: link(all.slice(0, i + 1).join('/')), text: p }));
    });
    main.append(h('h1', { text: 'Files' }), h('nav.crumbs', { 'aria-label': 'Folder' }, crumbs));

    const input = h('input', { type: 'file', id: 'upload-input', multiple: true });
    const uploadButton = h('button.primary', { type: 'submit', id: 'upload-submit', text: 'Upload' });
    const upload = h('form.card', { id: 'upload-form', 'aria-labelledby': 'upload-title' },
      h('h2', { id: 'upload-title', text: 'Upload' }),
      h('div.row', {},
        h('div', {}, h('label', { for: 'upload-input', text: `Files to put in ${dir ? `app_root/${dir}` : 'app_root'} (a file of the same name is replaced)` }), input),
        h('div', {}, uploadButton)));
    const listing = h('div', {}, loadingBox('Loading the folder…'));
    const viewer = h('div', { id: 'file-viewer' });
    main.append(h('section.card', { 'aria-labelledby': 'listing-title' }, h('h2', { id: 'listing-title', text: dir ? `app_root/${dir}` : 'app_root' }), listing),
      viewer, upload);

    async function view(entry) {
      viewer.replaceChildren(h('section.card', {}, loadingBox(`Opening ${entry.name}…`)));
      let content;
      try {
        content = await api('GET', `/api/files/content?path=${enc(entry.path)}`, undefined, { text: true });
      } catch (e) { viewer.replaceChildren(h('section.card', {}, errorBox(e))); return; }
      const binary = content.includes('\u0000');
      const card = h('section.card', { 'aria-labelledby': 'viewer-title', tabindex: '-1' },
        h('div.toolbar', {}, h('h2', { id: 'viewer-title', text: entry.path }),
          h('a.button', { href: `/api/files/content?path=${enc(entry.path)}`, download: entry.name, text: 'Download' })),
        binary ? empty('A binary file: download it to open it.')
          : h('pre.file', { id: 'file-content', tabindex: '0', 'aria-label': `Content of ${entry.name}`, text: content }));
      viewer.replaceChildren(card);
      card.focus();
    }

    /** Renames within the folder shown: the new name may not leave it. */
    async function rename(e, button) {
      const values = await ask({ title: `Rename ${e.name}`, message: `A new name in ${dir ? `app_root/${dir}` : 'app_root'} (an existing entry of that name is not replaced).`,
        ok: 'Rename', fields: [{ name: 'name', label: 'New name', value: e.name, required: true }] });
      if (!values) return;
      const name = values.name.trim();
      if (!name || name === '.' || name === '..' || name.includes('/')) { toast('A name, without "/"', true); return; }
      if (name === e.name) return;
      const to = dir ? `${dir}/${name}` : name;
      const moved = await act(button, `${e.name} renamed to ${name}`, () => api('POST', '/api/files/move', { from: e.path, to }));
      if (moved !== undefined) { viewer.replaceChildren(); load(); }
    }

    async function remove(e, button) {
      const folder = e.type === 'dir';
      const ok = await ask({ title: `Delete ${e.name}${folder ? '/' : ''}?`, danger: true, ok: 'Delete',
        message: folder ? `The folder app_root/${e.path} and everything in it are deleted. There is no undo.`
          : `app_root/${e.path} is deleted. There is no undo.` });
      if (!ok) return;
      const removed = await act(button, `${e.name} deleted`, () => api('DELETE', `/api/files?path=${enc(e.path)}${folder ? '&recursive=true' : ''}`));
      if (removed !== undefined) { viewer.replaceChildren(); load(); }
    }

    function row(e) {
      const td = (label, content, cls) => h('td', { 'data-label': label, class: cls }, content);
      let name;
      const buttons = [];
      if (e.type === 'dir') {
        name = h('a', { href: link(e.path), text: `${e.name}/` });
      } else {
        name = h('span', { text: e.name });
        if (e.type === 'file') {
          const open = h('button', { type: 'button', text: 'View', 'aria-label': `View ${e.name}`, disabled: e.size > VIEW_LIMIT,
            title: e.size > VIEW_LIMIT ? 'Too large to view here: download it' : undefined });
          open.addEventListener('click', () => view(e));
          const download = h('a.button', { href: `/api/files/content?path=${enc(e.path)}`, download: e.name, text: 'Download', 'aria-label': `Download ${e.name}` });
          buttons.push(open, download);
        }
      }
      const renameButton = h('button', { type: 'button', text: 'Rename', 'data-action': 'rename', 'aria-label': `Rename ${e.name}` });
      renameButton.addEventListener('click', () => rename(e, renameButton));
      const deleteButton = h('button.danger', { type: 'button', text: 'Delete', 'data-action': 'delete', 'aria-label': `Delete ${e.name}` });
      deleteButton.addEventListener('click', () => remove(e, deleteButton));
      buttons.push(renameButton, deleteButton);
      const actions = h('div.actions', {}, buttons);
      return h('tr', { 'data-file': e.name },
        td('Name', name),
        td('Type', e.type === 'file' ? 'file' : badge(e.type, 'info')),
        td('Size', e.type === 'dir' ? '–' : bytes(e.size), 'num'),
        td('Modified', e.mtime ? when(Date.parse(e.mtime)) : '–', 'num'),
        td('Mode', h('code', { text: e.mode })),
        td('Actions', actions));
    }

    async function load() {
      try {
        const l = await api('GET', `/api/files?path=${enc(dir)}`);
        const entries = [...l.entries].sort((a, b) => (a.type === 'dir') !== (b.type === 'dir') ? (a.type === 'dir' ? -1 : 1) : a.name.localeCompare(b.name));
        listing.replaceChildren(entries.length === 0 ? empty('This folder is empty: upload files with the form below.')
          : h('div.table-wrap', {}, h('table.stack', { id: 'files-table' },
            l.truncated ? h('caption.muted', { text: `The first ${entries.length} entries.` }) : null,
            h('thead', {}, h('tr', {}, ['Name', 'Type', 'Size', 'Modified', 'Mode', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
            h('tbody', {}, entries.map(row)))));
      } catch (e) { listing.replaceChildren(errorBox(e)); }
    }

    upload.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (input.files.length === 0) { toast('Choose a file first', true); input.focus(); return; }
      const form = new FormData();
      for (const f of input.files) form.append('file', f, f.name);
      uploadButton.disabled = true;
      try {
        const written = await api('POST', `/api/files/upload?dir=${enc(dir)}`, form);
        toast(`Uploaded ${written.map((w) => w.entry.name).join(', ')}`);
        input.value = '';
        load();
      } catch (e) {
        if (e.status !== 401) toast(`Upload failed: ${e.message}`, true);
      } finally { uploadButton.disabled = false; }
    });

    load();
    return null;
  }

  window.apollo.pages.files = files;
})();
