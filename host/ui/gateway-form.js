// Gateway route form (module-gateway): add a route (`POST /routes`) or edit one (the whole
// table read, that route replaced, `PUT /routes`). The module validates every route; its
// refusal (bad prefix, bad address, service and upstreams both given...) is shown above
// the form, word for word. Fields the form does not show (headers, timeouts, fallback,
// upstream weights) are kept as they were when a route is edited.
'use strict';

(() => {
  const { h, api, toast } = window.apollo;
  const GW = '/api/module/gateway';
  const list = (text) => text.split(',').map((s) => s.trim()).filter(Boolean);

  /** The form: `{ element, edit(route) }`; `onSaved()` runs after the module accepted it. */
  function routeForm(onSaved) {
    let editing = null; // the route being edited, as the module listed it
    const field = (id, label, input, hint) => h('div', {}, h('label', { for: id, text: label }), input,
      hint ? h('small.muted', { id: `${id}-hint`, text: hint }) : null);
    const name = h('input', { id: 'route-name', required: true, autocomplete: 'off', pattern: '[A-Za-z0-9_.-]+' });
    const prefix = h('input', { id: 'route-prefix', required: true, value: '/', autocomplete: 'off' });
    const upstreams = h('input', { id: 'route-upstreams', autocomplete: 'off', 'aria-describedby': 'route-upstreams-hint' });
    const service = h('input', { id: 'route-service', autocomplete: 'off', 'aria-describedby': 'route-service-hint' });
    const hosts = h('input', { id: 'route-hosts', autocomplete: 'off' });
    const methods = h('input', { id: 'route-methods', autocomplete: 'off' });
    const balance = h('select', { id: 'route-balance' }, ['round_robin', 'least_request', 'weighted'].map((b) => h('option', { value: b, text: b })));
    const retries = h('input', { id: 'route-retries', type: 'number', min: '0', max: '10', value: '1' });
    const strip = h('input', { id: 'route-strip', type: 'checkbox' });
    const error = h('p.error', { id: 'route-error', role: 'alert', tabindex: '-1', hidden: true });
    const title = h('h2', { id: 'route-form-title', text: 'Add a route' });
    const save = h('button.primary', { type: 'submit', id: 'route-save', text: 'Add route' });
    const cancel = h('button', { type: 'button', id: 'route-cancel', text: 'Cancel edit', hidden: true });
    const form = h('form', { id: 'route-form', 'aria-labelledby': 'route-form-title', novalidate: true },
      title, error,
      h('div.row', {}, field('route-name', 'Name', name), field('route-prefix', 'Path prefix', prefix)),
      h('div.row', {},
        field('route-upstreams', 'Upstreams', upstreams, 'host:port, comma-separated (or a catalog service)'),
        field('route-service', 'Catalog service', service, 'instead of upstreams: its passing instances')),
      h('div.row', {},
        field('route-hosts', 'Hosts (optional, comma-separated)', hosts),
        field('route-methods', 'Methods (optional, comma-separated)', methods)),
      h('div.row', {}, field('route-balance', 'Balance', balance), field('route-retries', 'Retries', retries),
        h('div', {}, h('label.check', { for: 'route-strip' }, strip, ' Strip the prefix'))),
      h('div.actions', {}, save, cancel));
    const element = h('details.card', { id: 'route-editor' }, h('summary', { text: 'Add or edit a route' }), form);

    function reset() {
      editing = null;
      form.reset();
      name.readOnly = false;
      title.textContent = 'Add a route';
      save.textContent = 'Add route';
      cancel.hidden = true;
      error.hidden = true;
    }

    /** Fills the form with `route` and opens it. */
    function edit(route) {
      reset();
      editing = route;
      name.value = route.name;
      name.readOnly = true; // a new name is a new route: remove this one and add it
      prefix.value = route.path_prefix || '/';
      upstreams.value = (route.upstreams || []).map((u) => u.address).join(', ');
      service.value = route.service || '';
      hosts.value = (route.hosts || []).join(', ');
      methods.value = (route.methods || []).join(', ');
      balance.value = route.balance || 'round_robin';
      retries.value = String(route.retries ?? 1);
      strip.checked = !!route.strip_prefix;
      title.textContent = `Edit route ${route.name}`;
      save.textContent = 'Save route';
      cancel.hidden = false;
      element.open = true;
      prefix.focus();
    }

    /** The route the form describes, on top of the edited one's other fields. */
    function spec() {
      const out = { ...(editing || {}) };
      out.name = name.value.trim();
      out.path_prefix = prefix.value.trim();
      const addresses = list(upstreams.value);
      const kept = new Map(((editing && editing.upstreams) || []).map((u) => [u.address, u]));
      if (addresses.length) out.upstreams = addresses.map((a) => kept.get(a) || { address: a }); else delete out.upstreams;
      if (service.value.trim()) out.service = service.value.trim(); else delete out.service;
      if (list(hosts.value).length) out.hosts = list(hosts.value); else delete out.hosts;
      if (list(methods.value).length) out.methods = list(methods.value).map((m) => m.toUpperCase()); else delete out.methods;
      out.balance = balance.value;
      out.retries = Number(retries.value || 0);
      out.strip_prefix = strip.checked;
      return out;
    }

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      error.hidden = true;
      const route = spec();
      save.disabled = true;
      try {
        if (editing) {
          const table = (await api('GET', `${GW}/routes`)).routes || [];
          if (!table.some((r) => r.name === route.name)) throw new Error(`route ${route.name} was removed meanwhile`);
          await api('PUT', `${GW}/routes`, { routes: table.map((r) => (r.name === route.name ? route : r)) });
          toast(`Route ${route.name} saved`);
        } else {
          await api('POST', `${GW}/routes`, route);
          toast(`Route ${route.name} added`);
        }
        reset();
        element.open = false;
        onSaved();
      } catch (e) {
        if (e.status === 401) return;
        // The module's own reason, as it gave it.
        error.textContent = e.message;
        error.hidden = false;
        error.focus();
      } finally { save.disabled = false; }
    });
    cancel.addEventListener('click', reset);
    return { element, edit };
  }

  window.apollo.widgets.routeForm = routeForm;
})();
