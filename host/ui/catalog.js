// Catalog page (module-catalog): every registered service and its instances with the
// status of each of their checks, read from the module's Consul API under the admin
// mount (`/api/module/catalog/v1/...`), the same answers a Consul client gets.
'use strict';

(() => {
  const { h, api, enc, badge, empty, loadingBox, errorBox, moduleLoaded, update } = window.apollo;
  const CATALOG = '/api/module/catalog/v1';
  const POLL_MS = 5000;
  const RANK = { passing: 0, warning: 1, critical: 2 };

  /** The worst status of a list of checks (no check at all counts as passing, as in Consul). */
  function worst(checks) {
    return checks.reduce((w, c) => ((RANK[c.Status] ?? 2) > (RANK[w] ?? 0) ? c.Status : w), 'passing');
  }

  /** One check: its name and status, and the start of its output (the whole on hover). */
  function checkItem(c) {
    const out = (c.Output || '').trim();
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
            h('thead', {}, h('tr', {}, ['Instance', 'Address', 'Node', 'Tags', 'Status', 'Checks'].map((t) => h('th', { scope: 'col', text: t })))),
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
                td('Checks', checks.length === 0 ? '–' : h('ul.checks', {}, checks.map(checkItem))));
            }))));
        }
        return h('section.card', { 'aria-labelledby': `svc-${s.name}`, 'data-service': s.name },
          h('h2', { id: `svc-${s.name}` }, s.name, ' ', (s.tags || []).map((t) => [' ', badge(t, 'info')])), content);
      });
      body.replaceChildren(summary, h('p.muted', { text: `Refreshed every ${POLL_MS / 1000} s.` }), ...cards);
    }

    load();
    window.apollo.every(POLL_MS, load);
    return { live };
  }

  window.apollo.pages.catalog = catalog;
})();
