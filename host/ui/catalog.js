// Catalog page (module-catalog): every registered service and its instances with the
// status of each of their checks, read from the module's Consul API under the admin
// mount (`/api/module/catalog/v1/...`), the same answers a Consul client gets; an
// instance put in or out of maintenance (with a reason) or deregistered (confirmed)
// through the same agent routes a Consul client uses.
'use strict';

(() => {
  const { h, api, enc, badge, ask, act, empty, loadingBox, errorBox, moduleLoaded, update } = window.apollo;
  const CATALOG = '/api/module/catalog/v1';
  const POLL_MS = 5000;
  const RANK = { passing: 0, warning: 1, critical: 2 };
  /** Consul's check id of an instance's maintenance mode (its Notes: the reason). */
  const MAINTENANCE = '_service_maintenance:';

  /** The worst status of a list of checks (no check at all counts as passing, as in Consul). */
  function worst(checks) {
    return checks.reduce((w, c) => ((RANK[c.Status] ?? 2) > (RANK[w] ?? 0) ? c.Status : w), 'passing');
  }

  /** One check: its name and status, and the start of its notes and output (the whole on hover). */
  function checkItem(c) {
    // Notes: the reason of a maintenance mode, or what the check's registration said.
    const out = [c.Notes, c.Output].map((t) => (t || '').trim()).filter(Boolean).join(' — ');
    return h('li', {}, badge(`${c.Name || c.CheckID}: ${c.Status}`, c.Status in RANK ? c.Status : 'critical'),
      out ? h('span.muted', { title: out, text: ` ${out.length > 80 ? `${out.slice(0, 80)}…` : out}` }) : null);
  }

  function catalog(main) {
    main.append(h('div.toolbar', {}, h('h1', { text: 'Catalog' })));
    const body = h('div', {}, loadingBox('Loading the catalog…'));
    main.append(body);
    if (!moduleLoaded('catalog')) {
      body.replaceChildren(empty('module-catalog is not loaded on this host: load module_catalog.so to register services and see them here.'));
      return null;
    }
    let services = null; // [{name, tags, entries | error}]
    let failure = null;

    async function load() {
      try {
        const names = await api('GET', `${CATALOG}/catalog/services`);
        services = await Promise.all(Object.entries(names || {}).sort(([a], [b]) => a.localeCompare(b)).map(async ([name, tags]) => {
          try { return { name, tags, entries: await api('GET', `${CATALOG}/health/service/${enc(name)}`) }; } catch (e) { return { name, tags, error: e }; }
        }));
        failure = null;
      } catch (e) { failure = e; }
      update();
    }

    async function maintenance(svc, on, button) {
      if (on) {
        const off = await act(button, `${svc.ID} out of maintenance`,
          () => api('PUT', `${CATALOG}/agent/service/maintenance/${enc(svc.ID)}?enable=false`));
        if (off !== undefined) load();
        return;
      }
      const values = await ask({ title: `Maintenance for ${svc.ID}`, ok: 'Start maintenance',
        message: 'The instance is reported critical (and left out of healthy answers) until maintenance ends.',
        fields: [{ name: 'reason', label: 'Reason', required: true }] });
      if (!values) return;
      const done = await act(button, `${svc.ID} in maintenance`,
        () => api('PUT', `${CATALOG}/agent/service/maintenance/${enc(svc.ID)}?enable=true&reason=${enc(values.reason)}`));
      if (done !== undefined) load();
    }

    async function deregister(svc, button) {
      const ok = await ask({ title: `Deregister ${svc.ID}?`, ok: 'Deregister', danger: true,
        message: `${svc.ID} (${svc.Service}) and its checks leave the catalog; its clients stop finding it. A client that registers it again brings it back.` });
      if (!ok) return;
      const done = await act(button, `${svc.ID} deregistered`, () => api('PUT', `${CATALOG}/agent/service/deregister/${enc(svc.ID)}`));
      if (done !== undefined) load();
    }

    function instanceActions(svc, checks) {
      const inMaintenance = checks.find((c) => c.CheckID === `${MAINTENANCE}${svc.ID}`);
      const toggle = h('button', { type: 'button', 'data-key': `maint-${svc.ID}`, text: inMaintenance ? 'End maintenance' : 'Maintenance…',
        'aria-label': `${inMaintenance ? 'End maintenance of' : 'Start maintenance of'} ${svc.ID}` });
      toggle.addEventListener('click', () => maintenance(svc, !!inMaintenance, toggle));
      const remove = h('button.danger', { type: 'button', 'data-key': `deregister-${svc.ID}`, text: 'Deregister', 'aria-label': `Deregister ${svc.ID}` });
      remove.addEventListener('click', () => deregister(svc, remove));
      return h('div.actions', {}, toggle, remove);
    }

    function live() {
      if (failure) { body.replaceChildren(errorBox(failure)); return; }
      if (!services) return;
      if (services.length === 0) { body.replaceChildren(empty('No service is registered. Clients register with PUT /v1/agent/service/register on the catalog listener.')); return; }
      const counts = { passing: 0, warning: 0, critical: 0 };
      let instances = 0;
      for (const s of services) {
        for (const e of s.entries || []) { instances += 1; counts[worst(e.Checks || [])] += 1; }
      }
      const stat = (label, value, kind) => h('div.stat', {}, h('b', { text: String(value) }), kind ? badge(label, kind) : h('span', { text: label }));
      const summary = h('div.stats', { id: 'catalog-summary' },
        stat('services', services.length), stat('instances', instances),
        stat('passing', counts.passing, 'passing'), stat('warning', counts.warning, 'warning'), stat('critical', counts.critical, 'critical'));
      const td = (label, content, cls) => h('td', { 'data-label': label, class: cls }, content);
      const cards = services.map((s) => {
        let content;
        if (s.error) content = errorBox(s.error);
        else if (s.entries.length === 0) content = empty('No instance registered.');
        else {
          content = h('div.table-wrap', {}, h('table.stack', { class: 'instances' },
            h('thead', {}, h('tr', {}, ['Instance', 'Address', 'Node', 'Tags', 'Status', 'Checks', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
            h('tbody', {}, s.entries.map((e) => {
              const svc = e.Service || {};
              const checks = e.Checks || [];
              const status = worst(checks);
              return h('tr', { 'data-instance': svc.ID },
                td('Instance', h('code', { text: svc.ID || '–' })),
                td('Address', h('code', { text: `${svc.Address || (e.Node && e.Node.Address) || '?'}:${svc.Port ?? '?'}` })),
                td('Node', (e.Node && e.Node.Node) || '–'),
                td('Tags', (svc.Tags || []).length ? svc.Tags.join(', ') : '–'),
                td('Status', badge(status, status), 'status'),
                td('Checks', checks.length === 0 ? '–' : h('ul.checks', {}, checks.map(checkItem))),
                td('Actions', instanceActions(svc, checks)));
            }))));
        }
        return h('section.card', { 'aria-labelledby': `svc-${s.name}`, 'data-service': s.name },
          h('h2', { id: `svc-${s.name}` }, s.name, ' ', (s.tags || []).map((t) => [' ', badge(t, 'info')])), content);
      });
      body.replaceChildren(summary, h('p.muted', {}, `Refreshed every ${POLL_MS / 1000} s. Keys and values: `, h('a', { href: '#/kv', text: 'the KV store' }), '.'), ...cards);
    }

    load();
    window.apollo.every(POLL_MS, load);
    return { live };
  }

  window.apollo.pages.catalog = catalog;
})();
