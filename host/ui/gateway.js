// Gateway page (module-gateway): the route table with live traffic per route, the
// upstreams and what passive health says of each instance, the listeners, and Seneca.
// Traffic comes from the host's own `/metrics` (the same series Prometheus scrapes),
// read every 2 s: rates are differences between two readings, so the page needs no
// history of its own and shows nothing until its second reading. Routes are added and
// edited with gateway-form.js's form, removed here (confirmed).
'use strict';

(() => {
  const { h, api, enc, badge, empty, loadingBox, errorBox, ask, act, moduleLoaded, update } = window.apollo;
  const GW = '/api/module/gateway';
  const POLL_MS = 2000;

  // ---------------------------------------------------------------- /metrics

  /** `{name="value",...}` into an object; Prometheus escapes `\\`, `\"` and `\n`. */
  function labels(text) {
    const out = {};
    const re = /(\w+)="((?:[^"\\]|\\.)*)"/g;
    let m;
    while ((m = re.exec(text)) !== null) out[m[1]] = m[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    return out;
  }

  /** Per route: requests, 5xx answers, and the latency histogram's cumulative buckets. */
  function readTraffic(exposition) {
    const routes = {};
    const of = (name) => {
      if (!routes[name]) routes[name] = { total: 0, errors: 0, buckets: {} };
      return routes[name];
    };
    for (const line of exposition.split('\n')) {
      const m = /^(gateway_requests_total|gateway_request_duration_seconds_bucket)\{([^}]*)\}\s+(\S+)/.exec(line);
      if (!m) continue;
      const l = labels(m[2]);
      const value = Number(m[3]);
      if (l.module !== undefined && l.module !== 'gateway') continue;
      if (!l.route || Number.isNaN(value)) continue;
      const r = of(l.route);
      if (m[1] === 'gateway_requests_total') {
        r.total += value;
        if (/^5\d\d$/.test(l.code || '')) r.errors += value;
      } else {
        r.buckets[l.le] = (r.buckets[l.le] || 0) + value;
      }
    }
    return routes;
  }

  /** Rates between two readings; null where there is nothing to compare (first reading,
   *  counters reset by a module reload). */
  function rates(prev, now, seconds) {
    const out = {};
    for (const [name, r] of Object.entries(now.routes)) {
      const p = prev && prev.routes[name];
      if (!p || seconds <= 0 || r.total < p.total) { out[name] = null; continue; }
      const requests = r.total - p.total;
      const errors = Math.max(0, r.errors - p.errors);
      // The median: the first bucket holding half of this interval's requests.
      let median = null;
      const count = (r.buckets['+Inf'] || 0) - (p.buckets['+Inf'] || 0);
      if (count > 0) {
        const bounds = Object.keys(r.buckets).filter((le) => le !== '+Inf').map(Number).sort((a, b) => a - b);
        for (const le of bounds) {
          const key = Object.keys(r.buckets).find((k) => Number(k) === le);
          if ((r.buckets[key] || 0) - (p.buckets[key] || 0) >= count / 2) { median = le; break; }
        }
        if (median === null) median = Infinity;
      }
      out[name] = { perSecond: requests / seconds, errorShare: requests > 0 ? errors / requests : null, median };
    }
    return out;
  }

  function latency(seconds) {
    if (seconds === null || seconds === undefined) return '–';
    if (seconds === Infinity) return '> 10 s';
    return seconds < 1 ? `≤ ${+(seconds * 1000).toFixed(1)} ms` : `≤ ${seconds} s`;
  }

  // ---------------------------------------------------------------- the page

  function gateway(main) {
    main.append(h('div.toolbar', {}, h('h1', { text: 'Gateway' })));
    const body = h('div', {}, loadingBox('Loading the gateway…'));
    if (!moduleLoaded('gateway')) {
      main.append(body);
      body.replaceChildren(empty('module-gateway is not loaded on this host: load module_gateway.so to route traffic and see it here.'));
      return null;
    }
    // Outside the live part: what is typed in it survives the periodic redraw.
    const form = window.apollo.widgets.routeForm(async () => { await loadRoutes(); update(); });
    main.append(form.element, body);
    const data = {
      routes: null, source: null, upstreams: null, listeners: null, seneca: null,
      failure: null, upstreamFailure: null, trafficFailure: null,
      reading: null, // the last /metrics reading {at, routes}
      rates: {}, // route name -> {perSecond, errorShare, median} | null
      totals: {}, // route name -> requests since the module loaded
    };

    async function loadRoutes() {
      try {
        const r = await api('GET', `${GW}/routes`);
        data.routes = r.routes || [];
        data.source = r.source;
        data.failure = null;
      } catch (e) { data.failure = e; }
    }
    async function loadUpstreams() {
      try { data.upstreams = (await api('GET', `${GW}/upstreams`)).upstreams || []; data.upstreamFailure = null; } catch (e) { data.upstreamFailure = e; }
    }
    async function loadTraffic() {
      try {
        const reading = { at: performance.now(), routes: readTraffic(await api('GET', '/metrics', undefined, { text: true })) };
        data.rates = rates(data.reading, reading, data.reading ? (reading.at - data.reading.at) / 1000 : 0);
        data.totals = Object.fromEntries(Object.entries(reading.routes).map(([k, v]) => [k, v.total]));
        data.reading = reading;
        data.trafficFailure = null;
      } catch (e) { data.trafficFailure = e; }
    }
    async function loadOnce() {
      const [listeners, seneca] = await Promise.all([
        api('GET', `${GW}/listeners`).catch((e) => ({ error: e })),
        api('GET', `${GW}/seneca`).catch((e) => ({ error: e })),
      ]);
      data.listeners = listeners;
      data.seneca = seneca;
    }

    function removeButton(route) {
      const button = h('button.danger', { type: 'button', 'data-key': `remove-route-${route.name}`, text: 'Remove', 'aria-label': `Remove route ${route.name}` });
      button.addEventListener('click', async () => {
        const ok = await ask({ title: `Remove route ${route.name}?`, ok: 'Remove', danger: true,
          message: `Requests for ${route.path_prefix} stop being routed to it at once (404 no_route, unless another route matches). The table is stored: the change outlives a restart.` });
        if (!ok) return;
        await act(button, `Route ${route.name} removed`, () => api('DELETE', `${GW}/routes/${enc(route.name)}`));
        await loadRoutes();
        update();
      });
      return button;
    }

    function editButton(route) {
      const button = h('button', { type: 'button', 'data-key': `edit-route-${route.name}`, text: 'Edit', 'aria-label': `Edit route ${route.name}` });
      button.addEventListener('click', () => form.edit(route));
      return button;
    }

    function target(route) {
      if (route.service) return h('span', {}, 'service ', h('b', { text: route.service }), h('span.muted', { text: ' (catalog)' }));
      const list = route.upstreams || [];
      if (list.length === 0) return '–';
      return h('span', {}, list.map((u, i) => [i ? ', ' : '', h('code', { text: u.address || JSON.stringify(u) })]));
    }

    function match(route) {
      const parts = [h('code', { text: route.path_prefix || '/' })];
      if (route.hosts && route.hosts.length) parts.push(h('br'), h('span.muted', { text: `hosts: ${route.hosts.join(', ')}` }));
      if (route.methods && route.methods.length) parts.push(h('br'), h('span.muted', { text: `methods: ${route.methods.join(', ')}` }));
      if (route.rewrite) parts.push(h('br'), h('span.muted', { text: `rewritten to ${route.rewrite}` }));
      else if (route.strip_prefix) parts.push(h('br'), h('span.muted', { text: 'prefix stripped' }));
      return h('span', {}, parts);
    }

    function routesCard() {
      let content;
      if (data.failure) content = errorBox(data.failure);
      else if (!data.routes) content = loadingBox('Loading routes…');
      else if (data.routes.length === 0) content = empty('No routes: every request gets 404 no_route. Add one with the form above, in the config (modules.config.gateway.routes) or through PUT /api/module/gateway/routes.');
      else {
        const td = (label, content2, cls) => h('td', { 'data-label': label, class: cls }, content2);
        const rows = data.routes.map((r) => {
          const rate = data.rates[r.name];
          const share = rate && rate.errorShare !== null ? rate.errorShare : null;
          return h('tr', { 'data-route': r.name },
            td('Route', h('b', { text: r.name })),
            td('Match', match(r)),
            td('Target', target(r)),
            td('Balance', r.balance || '–'),
            td('Retries', String(r.retries ?? '–'), 'num'),
            td('Requests/s', rate ? rate.perSecond.toFixed(1) : '–', 'num rps'),
            td('5xx', share === null ? '–' : h('span', { class: share > 0 ? 'bad-text' : '' }, `${(share * 100).toFixed(1)} %`), 'num errors'),
            td('Median', rate ? latency(rate.median) : '–', 'num latency'),
            td('Total', data.totals[r.name] === undefined ? '0' : String(data.totals[r.name]), 'num total'),
            td('Actions', h('div.actions', {}, editButton(r), removeButton(r))));
        });
        content = h('div.table-wrap', {}, h('table.stack', { id: 'gateway-routes' },
          h('caption.muted', { text: `Traffic over the last ${POLL_MS / 1000} s, from the host's /metrics. ${data.source === 'api'
            ? 'The table was last changed through the admin API.' : 'The table comes from the config file.'}` }),
          h('thead', {}, h('tr', {}, ['Route', 'Match', 'Target', 'Balance', 'Retries', 'Requests/s', '5xx', 'Median', 'Total', 'Actions']
            .map((t) => h('th', { scope: 'col', text: t })))),
          h('tbody', {}, rows)));
      }
      return h('section.card', { 'aria-labelledby': 'gw-routes' }, h('h2', { id: 'gw-routes', text: 'Routes' }),
        data.trafficFailure ? h('p.error', { role: 'alert', text: `Traffic figures unavailable: ${data.trafficFailure.message}` }) : null,
        content);
    }

    function instanceState(i) {
      // `active` counts requests in flight; passive health says only "ejected" or not.
      if (i.ejected) return badge(`ejected ${Math.ceil((i.ejected_for_ms || 0) / 1000)} s`, 'critical');
      return badge('healthy', 'ok');
    }

    function upstreamsCard() {
      let content;
      if (data.upstreamFailure) content = errorBox(data.upstreamFailure);
      else if (!data.upstreams) content = loadingBox('Loading upstreams…');
      else if (data.upstreams.length === 0) content = empty('No upstreams: a route names its upstreams, or a catalog service.');
      else {
        const td = (label, content2, cls) => h('td', { 'data-label': label, class: cls }, content2);
        content = data.upstreams.map((u) => h('div.table-wrap', {}, h('table.stack', { class: 'upstream', 'data-upstream': u.name },
          h('caption', {}, h('b', { text: u.name }), h('span.muted', { text: ` ${u.active || 0} in flight` }),
            u.ejected ? [' ', badge(`${u.ejected} ejected`, 'critical')] : null),
          h('thead', {}, h('tr', {}, ['Instance', 'Address', 'Weight', 'State', 'In flight', 'Failures in a row', 'Times ejected', 'Connections (open / idle)']
            .map((t) => h('th', { scope: 'col', text: t })))),
          h('tbody', {}, (u.instances || []).length === 0
            ? h('tr', {}, h('td', { colspan: 8, class: 'muted', text: 'No instance: none registered, or none passing its checks.' }))
            : u.instances.map((i) => h('tr', { 'data-instance': i.id },
              td('Instance', h('code', { text: i.id })),
              td('Address', h('code', { text: i.address })),
              td('Weight', String(i.weight ?? '–'), 'num'),
              td('State', instanceState(i), 'state'),
              td('In flight', String(i.active ?? 0), 'num'),
              td('Failures in a row', String(i.consecutive_failures ?? 0), 'num'),
              td('Times ejected', String(i.times_ejected ?? 0), 'num'),
              td('Connections (open / idle)', i.connections ? `${i.connections.open} / ${i.connections.idle}` : '–', 'num')))))));
      }
      return h('section.card', { 'aria-labelledby': 'gw-upstreams' }, h('h2', { id: 'gw-upstreams', text: 'Upstreams' }),
        h('p.muted', { text: 'Passive health: an instance that fails in a row is ejected for a while, then tried again.' }), content);
    }

    function listenersCard() {
      const l = data.listeners;
      let content;
      if (!l) content = loadingBox();
      else if (l.error) content = errorBox(l.error);
      else if (!l.listeners || l.listeners.length === 0) content = empty('Not listening: set modules.config.gateway.listen.');
      else content = h('ul', { id: 'gateway-listeners' }, l.listeners.map((a) => h('li', {}, h('code', { text: a }))));
      return h('section.card', { 'aria-labelledby': 'gw-listeners' }, h('h2', { id: 'gw-listeners', text: 'Listeners' }), content);
    }

    function senecaCard() {
      const s = data.seneca;
      let content;
      if (!s) content = loadingBox();
      else if (s.error) content = errorBox(s.error);
      else if (!s.enabled) content = empty('Seneca is off (modules.config.gateway.seneca.enabled).');
      else {
        const table = (id, heads, rows, none) => (rows.length === 0 ? empty(none)
          : h('div.table-wrap', {}, h('table.stack', { id },
            h('thead', {}, h('tr', {}, heads.map((t) => h('th', { scope: 'col', text: t })))),
            h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c, i) => h('td', { 'data-label': heads[i] }, c))))))));
        content = h('div', {},
          h('p', {}, 'Seneca messages are accepted at ', h('code', { text: s.path }), '.'),
          h('h3', { text: 'Patterns' }),
          table('seneca-patterns', ['Pattern', 'Service'], (s.patterns || []).map((p) => [h('code', { text: p.pattern }), p.service]),
            'No service declares a pattern (catalog meta).'),
          (s.collisions || []).length === 0 ? null : [h('h3', { text: 'Collisions' }),
            table('seneca-collisions', ['Pattern', 'Served by', 'Ignored'], s.collisions.map((c) => [h('code', { text: c.pattern }), c.served_by, c.ignored]), '')],
          h('h3', { text: 'Web routes' }),
          table('seneca-web', ['Method', 'Path', 'Pattern'], (s.web || []).map((w) => [w.method, h('code', { text: w.path }), h('code', { text: w.pattern })]),
            'No seneca-web routes.'));
      }
      return h('section.card', { 'aria-labelledby': 'gw-seneca' }, h('h2', { id: 'gw-seneca', text: 'Seneca' }), content);
    }

    function live() {
      body.replaceChildren(routesCard(), upstreamsCard(), h('div.grid', {}, listenersCard(), senecaCard()));
    }

    Promise.all([loadRoutes(), loadUpstreams(), loadTraffic(), loadOnce()]).then(update);
    window.apollo.every(POLL_MS, () => Promise.all([loadTraffic(), loadUpstreams()]).then(update));
    return { live };
  }

  window.apollo.pages.gateway = gateway;
})();
