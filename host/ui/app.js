// Apollo dashboard. Plain JavaScript, no framework, no build step: the host embeds this
// file and serves it under a CSP that allows only same-origin scripts.
//
// Every action goes through the documented API (and so through its audit trail). The
// session is the HttpOnly `apollo_session` cookie: this script never sees the token.
// Every request carries `X-Requested-With: apollo-ui`, which the host requires of
// cookie-authenticated changes (the CSRF guard in host/src/api/guard.rs).
// The DOM is built with createElement/textContent only: nothing the API returns is ever
// parsed as HTML.
'use strict';

(() => {
  // ---------------------------------------------------------------- small helpers

  const $ = (sel, root = document) => root.querySelector(sel);

  /** h('tag.class', {attr: value, onclick: fn}, children...) */
  function h(spec, attrs, ...children) {
    const [tag, ...classes] = spec.split('.');
    const el = document.createElement(tag || 'div');
    if (classes.length) el.className = classes.join(' ');
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'text') el.textContent = v;
      else if (k === 'class') el.className += (el.className ? ' ' : '') + v;
      else if (k === 'value') el.value = v;
      else if (k === 'checked') el.checked = !!v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  const enc = encodeURIComponent;

  function bytes(n) {
    if (n === null || n === undefined) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
  }

  function duration(secs) {
    if (secs === null || secs === undefined || Number.isNaN(secs)) return '–';
    secs = Math.max(0, Math.floor(secs));
    const d = Math.floor(secs / 86400), hr = Math.floor((secs % 86400) / 3600);
    const m = Math.floor((secs % 3600) / 60), s = secs % 60;
    if (d) return `${d}d ${hr}h`;
    if (hr) return `${hr}h ${m}m`;
    if (m) return `${m}m ${s}s`;
    return `${s}s`;
  }

  const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });
  const when = (ms) => (ms ? new Date(ms).toLocaleString([], { hour12: false }) : '–');
  const badge = (text, kind) => h('span.badge', { class: kind || text, text });

  /** Secrets never reach the page: values of keys that name one are masked. */
  const SECRET_NAME = /pass|secret|token|credential|private|api[_-]?key|access[_-]?key/i;
  function masked(value, key) {
    if (Array.isArray(value)) return value.map((v) => masked(v, key));
    if (value && typeof value === 'object') {
      const out = {};
      for (const [k, v] of Object.entries(value)) out[k] = masked(v, k);
      return out;
    }
    if (typeof value === 'string') {
      // `KEY=VALUE` environment entries name their secret in the key part.
      const eq = value.indexOf('=');
      if (eq > 0 && SECRET_NAME.test(value.slice(0, eq))) return `${value.slice(0, eq)}=••••••`;
      if (key && SECRET_NAME.test(key) && value) return '••••••';
    }
    return value;
  }

  function toast(message, bad) {
    const t = h('div.toast', { class: bad ? 'bad' : '', role: bad ? 'alert' : undefined, text: message });
    const box = $('#toasts');
    box.append(t);
    while (box.children.length > 3) box.firstChild.remove();
    setTimeout(() => t.remove(), bad ? 8000 : 4000);
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  /** One API call. `body`: JSON, or FormData/Blob sent as it is (uploads, raw values); `opts.text`: the
   *  answer as text, never parsed (a file's content, the Prometheus exposition). */
  async function api(method, path, body, opts = {}) {
    const headers = { 'X-Requested-With': 'apollo-ui', Accept: opts.text ? '*/*' : 'application/json' };
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
    if (body instanceof FormData || body instanceof Blob) {
      // As it is: the browser writes the multipart boundary, a Blob its own type (raw values).
      init.body = body;
    } else if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, `the host did not answer (${e.message})`);
    }
    const text = await res.text();
    let data = null;
    if (opts.text && res.ok) return text;
    try { data = text ? JSON.parse(text) : null; } catch { data = text; }
    if (res.status === 401 && !path.startsWith('/api/auth/login')) {
      sessionEnded('Your session has ended; sign in again.');
      throw new ApiError(401, 'not signed in');
    }
    if (!res.ok) {
      const msg = (data && data.error && data.error.message) || (data && data.message)
        || (typeof data === 'string' && data) || res.statusText;
      throw new ApiError(res.status, msg);
    }
    return data;
  }

  // ---------------------------------------------------------------- state

  const state = {
    user: null,
    services: new Map(), // name -> AppSummary
    statuses: new Map(), // name -> ServiceStatus (CPU/RSS/uptime)
    cpu: new Map(), // name -> {ms, at, percent}
    events: [], // newest first, at most 100
    alarms: [],
    modules: null,
    socket: null,
    page: null,
  };

  // ---------------------------------------------------------------- login / session

  function showLogin(message) {
    $('#top').hidden = true;
    $('#main').hidden = true;
    $('#login').hidden = false;
    const err = $('#login-error');
    err.hidden = !message;
    err.textContent = message || '';
    $('#login-password').value = '';
    $('#login-password').focus();
  }

  function sessionEnded(message) {
    state.user = null;
    closeEvents();
    stopPage();
    showLogin(message);
  }

  async function onLogin(ev) {
    ev.preventDefault();
    const button = $('#login-submit');
    button.disabled = true;
    try {
      const res = await fetch('/api/auth/login', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-Apollo-Session': 'cookie', 'X-Requested-With': 'apollo-ui' },
        body: JSON.stringify({ username: $('#login-user').value, password: $('#login-password').value }),
      });
      if (!res.ok) {
        let msg = res.statusText;
        try { msg = (await res.json()).error.message; } catch { /* keep the status text */ }
        showLogin(msg);
        return;
      }
      $('#login-password').value = '';
      await start();
    } catch (e) {
      showLogin(`The host did not answer: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  }

  async function logout() {
    try { await api('POST', '/api/auth/logout'); } catch { /* the cookie is cleared anyway */ }
    sessionEnded('Signed out.');
  }

  async function start() {
    let who;
    try {
      who = await api('GET', '/api/auth/whoami');
    } catch (e) {
      if (e.status !== 401) showLogin(e.message);
      return;
    }
    state.user = who.user;
    $('#whoami').textContent = who.user;
    $('#login').hidden = true;
    $('#top').hidden = false;
    $('#main').hidden = false;
    openEvents();
    await Promise.all([loadServices(), loadAlarms(), loadModules()]).catch(() => {});
    route();
  }

  // ---------------------------------------------------------------- live data

  async function loadServices() {
    const list = await api('GET', '/api/apps');
    state.services = new Map(list.map((s) => [s.name, s]));
  }

  async function loadStatuses() {
    const names = [...state.services.keys()];
    const results = await Promise.all(names.map((n) => api('GET', `/api/apps/${enc(n)}/status`).catch(() => null)));
    const now = Date.now();
    results.forEach((st, i) => {
      if (!st) return;
      const name = names[i];
      state.statuses.set(name, st);
      const ms = st.instances.reduce((sum, inst) => sum + (inst.cpu_time_ms || 0), 0);
      const prev = state.cpu.get(name);
      let percent = null;
      if (prev && now > prev.at && ms >= prev.ms) percent = ((ms - prev.ms) / (now - prev.at)) * 100;
      state.cpu.set(name, { ms, at: now, percent });
      const summary = state.services.get(name);
      if (summary) Object.assign(summary, { state: st.state, pid: st.pid, ports: st.ports, restarts: st.restarts });
    });
  }

  async function loadAlarms() {
    state.alarms = await api('GET', '/api/alarms?state=open');
    const n = state.alarms.length;
    const count = $('#alarm-count');
    count.hidden = n === 0;
    count.textContent = String(n);
    count.setAttribute('aria-label', `${n} open`);
  }

  async function loadModules() {
    state.modules = await api('GET', '/api/modules');
    // A module's page is in the navigation only while the module is loaded.
    for (const li of document.querySelectorAll('#nav [data-module]')) li.hidden = !moduleLoaded(li.dataset.module);
  }

  const moduleLoaded = (name) => !!(state.modules && state.modules.modules.some((m) => m.name === name));

  function closeEvents() {
    if (state.socket) {
      state.socket.onclose = null;
      state.socket.close();
      state.socket = null;
    }
  }

  function setLive(text, cls) {
    const el = $('#live');
    el.textContent = text;
    el.className = `live ${cls}`;
  }

  let reconnectTimer = null;
  function openEvents() {
    closeEvents();
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    // The browser sends the session cookie with the handshake; no token in the URL.
    const ws = new WebSocket(`${scheme}://${location.host}/api/events`);
    state.socket = ws;
    setLive('connecting', '');
    ws.onopen = () => setLive('live', 'on');
    ws.onmessage = (m) => {
      let ev;
      try { ev = JSON.parse(m.data); } catch { return; }
      onEvent(ev);
    };
    ws.onclose = async () => {
      setLive('offline', 'off');
      state.socket = null;
      // An expired session shows as a refused handshake: ask, and go to login if so.
      try { await api('GET', '/api/auth/whoami'); } catch { return; }
      clearTimeout(reconnectTimer);
      reconnectTimer = setTimeout(() => { if (state.user) { openEvents(); refreshAll(); } }, 2000);
    };
  }

  function describeEvent(ev) {
    switch (ev.kind) {
      case 'service_state': return `${ev.name} is ${ev.state}${ev.message ? ` — ${ev.message}` : ''}`;
      case 'model_added': return `model ${ev.name} added`;
      case 'model_changed': return `model ${ev.name} changed`;
      case 'model_removed': return `model ${ev.name} removed`;
      case 'model_problem': return `model problem in ${ev.file}: ${ev.message}`;
      case 'restart_limit_reached': return `${ev.name} reached its restart limit (${ev.restarts})`;
      case 'health_failing': return `${ev.name} health failing: ${ev.message}`;
      case 'module_load': return `module ${ev.name} ${ev.outcome} (generation ${ev.generation})`;
      case 'module_event': return `module ${ev.module}: ${ev.topic}`;
      case 'task_run': return `task ${ev.task} ${ev.result} (${ev.duration_ms} ms)`;
      case 'alarm_raised': return `alarm: ${ev.alarm_kind} on ${ev.subject} (${ev.severity})`;
      case 'alarm_resolved': return `alarm resolved: ${ev.alarm_kind} on ${ev.subject}`;
      case 'lagged': return `missed ${ev.missed} events`;
      default: return ev.kind;
    }
  }

  let refreshTimer = null;
  function refreshSoon(what) {
    refreshSoon.pending = new Set([...(refreshSoon.pending || []), ...what]);
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(async () => {
      const pending = refreshSoon.pending;
      refreshSoon.pending = new Set();
      const jobs = [];
      if (pending.has('services')) jobs.push(loadServices().then(loadStatuses));
      if (pending.has('alarms')) jobs.push(loadAlarms());
      if (pending.has('modules')) jobs.push(loadModules());
      await Promise.all(jobs).catch(() => {});
      update();
    }, 300);
  }

  function refreshAll() { refreshSoon(['services', 'alarms', 'modules']); }

  function onEvent(ev) {
    state.events.unshift({ at: Date.now(), ev });
    state.events.length = Math.min(state.events.length, 100);
    if (ev.kind === 'service_state') {
      const s = state.services.get(ev.name);
      if (s) { s.state = ev.state; s.pid = ev.pid; }
      update();
      refreshSoon(['services']);
    } else if (ev.kind.startsWith('model_')) {
      refreshSoon(['services']);
    } else if (ev.kind.startsWith('alarm_')) {
      refreshSoon(['alarms']);
      // The alarms page reloads its own (filtered) list.
      if (state.page && state.page.onAlarm) state.page.onAlarm();
    } else if (ev.kind === 'module_load') {
      refreshSoon(['modules']);
    } else if (ev.kind === 'task_run') {
      if (state.page && state.page.onTask) state.page.onTask();
      update();
    } else if (ev.kind === 'lagged') {
      refreshAll();
    } else {
      update();
    }
  }

  // ---------------------------------------------------------------- pages

  let pageTimer = null;
  let pageCleanup = null;
  function stopPage() {
    clearInterval(pageTimer);
    pageTimer = null;
    if (pageCleanup) pageCleanup();
    pageCleanup = null;
  }

  /** Re-renders the live part of the current page, keeping keyboard focus in place. */
  function update() {
    if (!state.page || !state.page.live) return;
    const active = document.activeElement && document.activeElement.dataset.key;
    state.page.live();
    if (active) {
      const again = document.querySelector(`[data-key="${CSS.escape(active)}"]`);
      if (again) again.focus();
    }
  }

  function route() {
    if (!state.user) return;
    stopPage();
    const parts = (location.hash.replace(/^#\/?/, '') || 'overview').split('/').map(decodeURIComponent);
    const [page, ...rest] = parts;
    for (const a of document.querySelectorAll('#nav a')) {
      if (a.dataset.page === page) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const main = $('#main');
    main.replaceChildren();
    const pages = { overview, services, service, modules, alarms, tasks, audit, config, ...extraPages };
    const render = pages[page] || notFound;
    state.page = render(main, rest) || null;
    // A page change moves keyboard and screen-reader focus to the new content.
    if (route.rendered) main.focus({ preventScroll: true });
    route.rendered = true;
    document.title = `${page.charAt(0).toUpperCase()}${page.slice(1)} · Apollo`;
  }

  function notFound(main) {
    main.append(h('h1', { text: 'Not found' }), h('p', {}, 'No such page. ', h('a', { href: '#/overview', text: 'Go to the overview' })));
  }

  function loadingBox(text) { return h('p.loading', { role: 'status', text: text || 'Loading…' }); }
  function errorBox(e) { return h('p.error', { role: 'alert', text: e.message || String(e) }); }
  function empty(text) { return h('p.empty', { text }); }

  /** A dialog: `fields` [{name, label, value, multiline, checkbox}] are returned filled
   *  (a checkbox as true/false), or null on cancel. */
  function ask({ title, message, ok = 'OK', danger = false, fields = [] }) {
    const dialog = $('#dialog');
    $('#dialog-title').textContent = title;
    $('#dialog-message').textContent = message || '';
    const box = $('#dialog-fields');
    box.replaceChildren();
    const inputs = fields.map((f, i) => {
      const id = `dialog-field-${i}`;
      if (f.checkbox) {
        const check = h('input', { id, name: f.name, type: 'checkbox', checked: f.value });
        box.append(h('label.check', { for: id }, check, ` ${f.label}`));
        return check;
      }
      const input = f.multiline ? h('textarea', { id, name: f.name, required: f.required })
        : h('input', { id, name: f.name, required: f.required });
      input.value = f.value || '';
      box.append(h('label', { for: id, text: f.label }), input);
      return input;
    });
    const okButton = $('#dialog-ok');
    okButton.textContent = ok;
    okButton.className = danger ? 'danger' : 'primary';
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => {
        if (dialog.returnValue !== 'ok') return resolve(null);
        const values = {};
        fields.forEach((f, i) => { values[f.name] = f.checkbox ? inputs[i].checked : inputs[i].value; });
        return resolve(values);
      }, { once: true });
      dialog.returnValue = '';
      dialog.showModal();
      (inputs[0] || $('#dialog-cancel')).focus();
    });
  }

  /** Runs an API action with its button disabled; reports the outcome. */
  async function act(button, what, fn) {
    if (button) button.disabled = true;
    try {
      const out = await fn();
      toast(what);
      return out;
    } catch (e) {
      if (e.status !== 401) toast(`${what} failed: ${e.message}`, true);
      return undefined;
    } finally {
      if (button) button.disabled = false;
    }
  }

  // ---- overview

  function overview(main) {
    main.append(h('h1', { text: 'Overview' }));
    const body = h('div');
    main.append(body);
    let sys = null;
    let sysError = null;
    async function loadSys() {
      if (!moduleLoaded('sys')) { sys = null; return; }
      try { sys = await api('GET', '/api/module/sys/system'); sysError = null; } catch (e) { sysError = e; }
    }
    function live() {
      const byState = {};
      for (const s of state.services.values()) byState[s.state] = (byState[s.state] || 0) + 1;
      const order = ['running', 'starting', 'stopping', 'backoff', 'unhealthy', 'errored', 'stopped'];
      const services = h('section.card', { 'aria-labelledby': 'ov-services' },
        h('h2', { id: 'ov-services' }, h('a', { href: '#/services', text: 'Services' })),
        state.services.size === 0 ? empty('No services registered. Add a model file to the models folder.')
          : h('div.stats', {}, order.filter((k) => byState[k]).map((k) =>
            h('div.stat', { 'data-state': k }, h('b', { text: byState[k] }), badge(k)))));
      const alarmsCard = h('section.card', { 'aria-labelledby': 'ov-alarms' },
        h('h2', { id: 'ov-alarms' }, h('a', { href: '#/alarms', text: `Open alarms (${state.alarms.length})` })),
        state.alarms.length === 0 ? empty('No open alarms.')
          : h('ul.events', {}, state.alarms.slice(0, 8).map((a) => h('li', {}, badge(a.severity), ' ',
            h('b', { text: a.subject }), ` ${a.kind}: ${a.message}`))));
      let host;
      if (!moduleLoaded('sys')) host = empty('Load module-sys to see host indicators.');
      else if (sysError) host = errorBox(sysError);
      else if (!sys) host = loadingBox();
      else {
        const cpu = sys.cpu && sys.cpu.total ? sys.cpu.total.busy_percent : null;
        const ram = sys.memory && sys.memory.ram;
        const stat = (label, value, pct) => h('div.stat', {}, h('b', { text: value }), h('span', { text: label }),
          pct === null || pct === undefined ? null : h('div.bar', { role: 'presentation' }, bar(pct)));
        host = h('div.stats', {},
          stat('CPU busy', cpu === null || cpu === undefined ? '–' : `${cpu.toFixed(1)} %`, cpu),
          stat('Memory used', ram ? `${ram.used_percent.toFixed(1)} %` : '–', ram ? ram.used_percent : null),
          stat('Load (1 min)', sys.load ? sys.load.load_1m.toFixed(2) : '–'),
          stat('Uptime', duration(sys.uptime_secs)),
          stat('Host', sys.hostname || '–'));
      }
      const hostCard = h('section.card', { 'aria-labelledby': 'ov-host' }, h('h2', { id: 'ov-host', text: 'Host' }), host);
      const eventsCard = h('section.card', { 'aria-labelledby': 'ov-events' },
        h('h2', { id: 'ov-events', text: 'Recent events' }),
        state.events.length === 0 ? empty('No events since this page opened; they appear here as they happen.')
          : h('ul.events', { id: 'recent-events' }, state.events.slice(0, 30).map(({ at, ev }) =>
            h('li', {}, h('time', { text: clock(at) }), describeEvent(ev)))));
      body.replaceChildren(h('div.grid', {}, hostCard, services, alarmsCard), eventsCard);
    }
    live();
    loadSys().then(live);
    pageTimer = setInterval(() => loadSys().then(update), 5000);
    return { live };
  }

  function bar(pct) {
    const span = h('span');
    span.style.width = `${Math.max(0, Math.min(100, pct))}%`;
    return span;
  }

  // ---- services

  function controls(name, st) {
    const running = ['running', 'starting', 'unhealthy', 'backoff'].includes(st);
    const start = h('button', { type: 'button', 'data-key': `start-${name}`, 'aria-label': `Start ${name}`, text: 'Start', disabled: running });
    const stop = h('button.danger', { type: 'button', 'data-key': `stop-${name}`, 'aria-label': `Stop ${name}`, text: 'Stop', disabled: st === 'stopped' });
    const restart = h('button', { type: 'button', 'data-key': `restart-${name}`, 'aria-label': `Restart ${name}`, text: 'Restart' });
    const action = (verb, button, danger) => async () => {
      const messages = {
        Stop: `${name} and the services that depend on it will be stopped, and stay stopped until started.`,
        Kill: `${name} is killed at once (its force_kill script, or SIGKILL to its process group), without a clean stop.`,
      };
      const ok = await ask({ title: `${verb} ${name}?`, message: messages[verb] || `${verb} ${name} now.`, ok: verb, danger });
      if (!ok) return;
      await act(button, `${verb} ${name}`, () => api('POST', `/api/apps/${enc(name)}/${verb.toLowerCase()}`));
      refreshSoon(['services']);
    };
    const kill = h('button.danger', { type: 'button', 'data-key': `kill-${name}`, 'aria-label': `Kill ${name}`, text: 'Kill', disabled: st === 'stopped' });
    start.addEventListener('click', action('Start', start, false));
    stop.addEventListener('click', action('Stop', stop, true));
    restart.addEventListener('click', action('Restart', restart, false));
    kill.addEventListener('click', action('Kill', kill, true));
    return h('div.actions', {}, start, stop, restart, kill);
  }

  function uptimeOf(st) {
    const started = st && st.instances && st.instances[0] && st.instances[0].started_at;
    return started && st.state !== 'stopped' ? duration((Date.now() - Date.parse(started)) / 1000) : '–';
  }

  function services(main) {
    main.append(h('div.toolbar', {}, h('h1', { text: 'Services' })));
    const body = h('div', {}, loadingBox('Loading services…'));
    main.append(body);
    let loaded = false;
    let failure = null;
    function live() {
      if (failure) { body.replaceChildren(errorBox(failure)); return; }
      if (!loaded) return;
      const problemsCard = problems.length === 0 ? null : h('section.card', { 'aria-labelledby': 'model-problems' },
        h('h2', { id: 'model-problems', text: `Model problems (${problems.length})` }),
        h('p.muted', { text: 'These model files did not load; the others did.' }),
        h('ul', {}, problems.map((p) => h('li', {}, h('code', { text: p.file || '' }), ` — ${p.message || p.error || JSON.stringify(p)}`))));
      if (state.services.size === 0) { body.replaceChildren(h('div', {}, empty('No services registered. Put a model file in the models folder; it appears here at once.'), problemsCard)); return; }
      const rows = [...state.services.values()].sort((a, b) => a.name.localeCompare(b.name)).map((s) => {
        const st = state.statuses.get(s.name);
        const rss = st ? st.instances.reduce((sum, i) => sum + (i.rss_bytes || 0), 0) : null;
        const cpu = state.cpu.get(s.name);
        const td = (label, content, cls) => h('td', { 'data-label': label, class: cls }, content);
        return h('tr', { 'data-service': s.name },
          td('Name', h('a', { href: `#/service/${enc(s.name)}`, text: s.name })),
          td('State', badge(s.state), 'state'),
          td('Mode', s.mode),
          td('Ports', s.ports && s.ports.length ? s.ports.join(', ') : '–'),
          td('CPU', cpu && cpu.percent !== null && s.state !== 'stopped' ? `${cpu.percent.toFixed(1)} %` : '–', 'num'),
          td('RSS', rss ? bytes(rss) : '–', 'num'),
          td('Restarts', String(s.restarts), 'num'),
          td('Uptime', uptimeOf(st), 'num'),
          td('Actions', controls(s.name, s.state)));
      });
      body.replaceChildren(h('div', {}, h('div.table-wrap', {}, h('table.stack', { id: 'services-table' },
        h('caption.muted', { text: 'States change live; CPU and memory refresh every 5 s.' }),
        h('thead', {}, h('tr', {}, ['Name', 'State', 'Mode', 'Ports', 'CPU', 'RSS', 'Restarts', 'Uptime', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', {}, rows))), problemsCard));
    }
    let problems = [];
    const loadProblems = () => api('GET', '/api/models/problems').then((p) => { problems = Array.isArray(p) ? p : (p.problems || []); }).catch(() => {});
    const load = () => Promise.all([loadServices().then(loadStatuses), loadProblems()]).then(() => { loaded = true; failure = null; update(); })
      .catch((e) => { failure = e; update(); });
    load();
    pageTimer = setInterval(() => Promise.all([loadStatuses(), loadProblems()]).then(update).catch(() => {}), 5000);
    return { live };
  }

  function service(main, [name]) {
    const head = h('div');
    const info = h('div', {}, loadingBox());
    const log = h('pre.log', { id: 'log', tabindex: '0', 'aria-label': `Log of ${name}`, 'aria-live': 'off' });
    const logState = h('p.muted', { id: 'log-state', text: 'Connecting to the log…' });
    main.append(h('nav.crumbs', { 'aria-label': 'Breadcrumb' }, h('a', { href: '#/services', text: 'Services' }), '›', h('span', { text: name })),
      head, h('div.grid', {}, info));
    // CPU/RSS over the last hour (charts.js), refreshed with the status below.
    const charts = widgets.serviceCharts(name);
    main.append(charts.element,
      h('section.card', { 'aria-labelledby': 'log-title' }, h('h2', { id: 'log-title', text: 'Log (live)' }), logState, log));
    let detail = null;
    let failure = null;
    function live() {
      const st = state.statuses.get(name) || (detail && detail.status);
      const summary = state.services.get(name);
      const now = summary ? summary.state : st && st.state;
      head.replaceChildren(h('div.toolbar', {}, h('h1', { text: name }), now ? badge(now) : null, now ? controls(name, now) : null));
      if (failure) { info.replaceChildren(errorBox(failure)); return; }
      if (!detail) return;
      const model = masked(detail.model);
      const inst = (st && st.instances) || [];
      info.replaceChildren(
        h('section.card', { 'aria-labelledby': 'rt-title' }, h('h2', { id: 'rt-title', text: 'Runtime' }),
          h('dl.kv', {},
            h('dt', { text: 'State' }), h('dd', { id: 'service-state' }, badge(now || '–')),
            h('dt', { text: 'Mode' }), h('dd', { text: st ? st.mode : '–' }),
            h('dt', { text: 'PID' }), h('dd', { text: st && st.pid ? st.pid : '–' }),
            h('dt', { text: 'Ports' }), h('dd', { text: st && st.ports.length ? st.ports.join(', ') : '–' }),
            h('dt', { text: 'Uptime' }), h('dd', { text: uptimeOf(st) }),
            h('dt', { text: 'RSS' }), h('dd', { text: bytes(inst.reduce((s, i) => s + (i.rss_bytes || 0), 0) || null) }),
            h('dt', { text: 'Restarts' }), h('dd', { text: st ? st.restarts : '–' }),
            h('dt', { text: 'Health' }), h('dd', { text: st ? (st.health_failures ? `${st.health_failures} failed check(s)` : 'ok') : '–' }),
            h('dt', { text: 'Last message' }), h('dd', { text: (st && st.message) || '–' }),
            h('dt', { text: 'Model file' }), h('dd', {}, h('code', { text: detail.file })))),
        h('section.card', { 'aria-labelledby': 'model-title' }, h('h2', { id: 'model-title', text: 'Model' }),
          h('p.muted', { text: 'Values whose names look secret are masked.' }),
          h('pre.json', { tabindex: '0', text: JSON.stringify(model, null, 2) })));
    }
    api('GET', `/api/apps/${enc(name)}`).then((d) => { detail = d; state.statuses.set(name, d.status); update(); })
      .catch((e) => { failure = e; update(); });
    live();
    // The log: the last 200 lines, then every new one, over server-sent events (the
    // cookie goes with it; nothing in the URL but the service name).
    const source = new EventSource(`/api/apps/${enc(name)}/logs?follow=true&tail=200`);
    let lines = 0;
    source.onopen = () => { logState.textContent = 'Following the log as it is written.'; };
    source.onmessage = (m) => {
      const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
      log.append(document.createTextNode(`${m.data}\n`));
      lines += 1;
      if (lines > 2000) { log.firstChild.remove(); lines -= 1; }
      if (stick) log.scrollTop = log.scrollHeight;
    };
    source.onerror = () => { logState.textContent = 'The log stream was interrupted; reconnecting…'; };
    pageCleanup = () => source.close();
    pageTimer = setInterval(() => { charts.refresh(); loadStatuses().then(update).catch(() => {}); }, 5000);
    return { live };
  }

  // ---- modules

  function modules(main) {
    const reloadAll = h('button', { type: 'button', id: 'modules-reload', text: 'Reload all' });
    main.append(h('div.toolbar', {}, h('h1', { text: 'Modules' }), reloadAll));
    const body = h('div', {}, loadingBox('Loading modules…'));
    main.append(body);
    let failure = null;
    reloadAll.addEventListener('click', async () => {
      await act(reloadAll, 'Modules reloaded', () => api('POST', '/api/modules/reload'));
      refreshSoon(['modules']);
    });
    function moduleAction(name, verb, path, button) {
      return async () => {
        const ok = await ask({ title: `${verb} module ${name}?`, message: verb === 'Disable'
          ? `Its routes stop answering until it is enabled again.` : `${verb} ${name} now.`, ok: verb, danger: verb === 'Disable' });
        if (!ok) return;
        await act(button, `${verb} ${name}`, () => api('POST', path));
        refreshSoon(['modules']);
      };
    }
    function live() {
      if (failure) { body.replaceChildren(errorBox(failure)); return; }
      const m = state.modules;
      if (!m) return;
      const rows = m.modules.map((mod) => {
        const reload = h('button', { type: 'button', 'data-key': `reload-${mod.name}`, text: 'Reload', 'aria-label': `Reload ${mod.name}` });
        const disable = h('button.danger', { type: 'button', 'data-key': `disable-${mod.name}`, text: 'Disable', 'aria-label': `Disable ${mod.name}` });
        reload.addEventListener('click', moduleAction(mod.name, 'Reload', `/api/modules/reload?name=${enc(mod.name)}`, reload));
        disable.addEventListener('click', moduleAction(mod.name, 'Disable', `/api/modules/${enc(mod.name)}/disable`, disable));
        const td = (label, content, cls) => h('td', { 'data-label': label, class: cls }, content);
        return h('tr', {},
          td('Name', h('span', {}, h('b', { text: mod.name }), h('br'), h('span.muted', { text: mod.description }))),
          td('State', badge(mod.state)),
          td('Version', `${mod.version} · gen ${mod.generation}`),
          td('Routes', h('details', {}, h('summary', { text: `${mod.routes.length} routes` }),
            h('ul', {}, mod.routes.map((r) => h('li', {}, h('code', { text: `${r.method} ${r.path}` }), r.public ? ' (public)' : ''))))),
          td('Requests', String(mod.requests), 'num'),
          td('Panics', String(mod.panics), 'num'),
          td('Actions', h('div.actions', {}, reload, disable)));
      });
      const table = rows.length === 0 ? empty(`No module is loaded. Drop a .so file into ${m.dir}.`)
        : h('div.table-wrap', {}, h('table.stack', { id: 'modules-table' },
          h('thead', {}, h('tr', {}, ['Module', 'State', 'Version', 'Routes', 'Requests', 'Panics', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
          h('tbody', {}, rows)));
      const disabled = m.disabled.length === 0 ? null : h('section.card', { 'aria-labelledby': 'mod-disabled' },
        h('h2', { id: 'mod-disabled', text: 'Disabled' }),
        h('ul', {}, m.disabled.map((d) => {
          const name = d.name || d;
          const enable = h('button', { type: 'button', 'data-key': `enable-${name}`, text: 'Enable', 'aria-label': `Enable ${name}` });
          enable.addEventListener('click', moduleAction(name, 'Enable', `/api/modules/${enc(name)}/enable`, enable));
          return h('li', {}, h('b', { text: name }), ' ', enable);
        })));
      const problems = h('section.card', { 'aria-labelledby': 'mod-problems' },
        h('h2', { id: 'mod-problems', text: 'Refused' }),
        m.problems.length === 0 ? empty('Every library in the folder loaded.')
          : h('ul', {}, m.problems.map((p) => h('li', {}, badge('refused'), ' ', h('code', { text: p.file }), ` — ${p.error}`))));
      body.replaceChildren(h('div', {}, h('p.muted', {}, 'Folder: ', h('code', { text: m.dir })), table, disabled, problems));
    }
    loadModules().then(update).catch((e) => { failure = e; update(); });
    return { live };
  }

  // ---- alarms

  function alarms(main) {
    const filter = h('select', { id: 'alarm-filter' },
      ['open', 'acked', 'resolved', 'all'].map((s) => h('option', { value: s, text: s })));
    main.append(h('div.toolbar', {}, h('h1', { text: 'Alarms' }), h('label', { for: 'alarm-filter', text: 'Show' }), filter));
    const body = h('div', {}, loadingBox('Loading alarms…'));
    main.append(body);
    let list = null;
    let failure = null;
    async function load() {
      try { list = await api('GET', `/api/alarms?state=${enc(filter.value)}`); failure = null; } catch (e) { failure = e; }
      update();
    }
    filter.addEventListener('change', load);
    function live() {
      if (failure) { body.replaceChildren(errorBox(failure)); return; }
      if (!list) return;
      if (list.length === 0) { body.replaceChildren(empty(`No ${filter.value === 'all' ? '' : `${filter.value} `}alarms.`)); return; }
      const rows = list.map((a) => {
        const td = (label, content, cls) => h('td', { 'data-label': label, class: cls }, content);
        let ack = null;
        if (a.state === 'open') {
          ack = h('button', { type: 'button', 'data-key': `ack-${a.id}`, text: 'Acknowledge', 'aria-label': `Acknowledge alarm ${a.id}` });
          ack.addEventListener('click', async () => {
            await act(ack, `Alarm ${a.id} acknowledged`, () => api('POST', `/api/alarms/${a.id}/ack`));
            await loadAlarms().catch(() => {});
            load();
          });
        }
        return h('tr', { 'data-alarm': a.id },
          td('Severity', badge(a.severity)),
          td('State', badge(a.state), 'state'),
          td('Kind', a.kind),
          td('Subject', h('b', { text: a.subject })),
          td('Message', a.message),
          td('Count', String(a.count), 'num'),
          td('Last seen', when(a.last_seen_ms), 'num'),
          td('Actions', ack || '–'));
      });
      body.replaceChildren(h('div.table-wrap', {}, h('table.stack', { id: 'alarms-table' },
        h('thead', {}, h('tr', {}, ['Severity', 'State', 'Kind', 'Subject', 'Message', 'Count', 'Last seen', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', {}, rows))));
    }
    load();
    return { live, onAlarm: load };
  }

  // ---- tasks

  function tasks(main) {
    main.append(h('h1', { text: 'Tasks' }));
    const body = h('div', {}, loadingBox('Loading tasks…'));
    // The run history of one task, chosen with its History button; outside the table so
    // the table's live re-renders leave it (and its scroll position) alone.
    const historyBox = h('div', { id: 'task-history' });
    main.append(body, historyBox);
    let list = null;
    let failure = null;
    let shown = null; // the task whose history is open
    async function load() {
      try { list = await api('GET', '/api/tasks'); failure = null; } catch (e) { failure = e; }
      update();
      if (shown) loadHistory(shown, false);
    }
    async function loadHistory(t, focus) {
      shown = t;
      let runs;
      try { runs = await api('GET', `/api/tasks/${enc(t.id)}/history?limit=50`); } catch (e) { historyBox.replaceChildren(h('section.card', {}, errorBox(e))); return; }
      const td = (label, content, cls) => h('td', { 'data-label': label, class: cls }, content);
      const close = h('button', { type: 'button', text: 'Close', 'aria-label': `Close the history of ${t.name}` });
      close.addEventListener('click', () => { shown = null; historyBox.replaceChildren(); });
      const card = h('section.card', { 'aria-labelledby': 'task-history-title', tabindex: '-1' },
        h('div.toolbar', {}, h('h2', { id: 'task-history-title', text: `History of ${t.name}` }), close),
        runs.length === 0 ? empty('Never run yet.') : h('div.table-wrap', {}, h('table.stack', { id: 'task-history-table' },
          h('thead', {}, h('tr', {}, ['Started', 'Trigger', 'Result', 'Duration', 'Message'].map((x) => h('th', { scope: 'col', text: x })))),
          h('tbody', {}, runs.map((r) => h('tr', {},
            td('Started', when(Date.parse(r.started_at)), 'num'),
            td('Trigger', r.trigger),
            td('Result', badge(r.result, r.result === 'ok' ? 'ok' : (r.result === 'skipped' ? 'stopped' : 'error'))),
            td('Duration', `${r.duration_ms} ms`, 'num'),
            td('Message', r.message || '–')))))));
      historyBox.replaceChildren(card);
      if (focus) card.focus();
    }
    function live() {
      if (failure) { body.replaceChildren(errorBox(failure)); return; }
      if (!list) return;
      if (list.length === 0) { body.replaceChildren(empty('No scheduled tasks.')); return; }
      const rows = list.map((t) => {
        const run = h('button', { type: 'button', 'data-key': `run-${t.id}`, text: 'Run now', 'aria-label': `Run ${t.name} now`, disabled: t.running });
        run.addEventListener('click', async () => { await act(run, `${t.name} started`, () => api('POST', `/api/tasks/${enc(t.id)}/run`)); load(); });
        const verb = t.paused ? 'resume' : 'pause';
        const toggle = h('button', { type: 'button', 'data-key': `${verb}-${t.id}`, text: t.paused ? 'Resume' : 'Pause', 'aria-label': `${t.paused ? 'Resume' : 'Pause'} ${t.name}` });
        toggle.addEventListener('click', async () => { await act(toggle, `${t.name} ${verb}d`, () => api('POST', `/api/tasks/${enc(t.id)}/${verb}`)); load(); });
        const history = h('button', { type: 'button', 'data-key': `history-${t.id}`, text: 'History', 'aria-label': `History of ${t.name}` });
        history.addEventListener('click', () => loadHistory(t, true));
        const stateText = t.running ? 'running' : (t.paused ? 'paused' : 'scheduled');
        const td = (label, content, cls) => h('td', { 'data-label': label, class: cls }, content);
        return h('tr', { 'data-task': t.id },
          td('Task', h('span', {}, h('b', { text: t.name }), h('br'), h('span.muted', { text: t.description }))),
          td('Schedule', h('code', { text: t.schedule || '–' })),
          td('State', badge(stateText, t.running ? 'starting' : (t.paused ? 'stopped' : 'info'))),
          td('Next run', t.next_run ? when(Date.parse(t.next_run)) : '–', 'num'),
          td('Last run', t.last_run ? when(Date.parse(t.last_run)) : '–', 'num'),
          td('Result', t.last_result ? h('span', {}, badge(t.last_result, t.last_result === 'ok' ? 'ok' : 'error'), ' ', t.last_message || '') : '–'),
          td('Duration', t.last_duration_ms === null || t.last_duration_ms === undefined ? '–' : `${t.last_duration_ms} ms`, 'num'),
          td('Actions', h('div.actions', {}, run, toggle, history)));
      });
      body.replaceChildren(h('div.table-wrap', {}, h('table.stack', { id: 'tasks-table' },
        h('thead', {}, h('tr', {}, ['Task', 'Schedule', 'State', 'Next run', 'Last run', 'Result', 'Duration', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', {}, rows))));
    }
    load();
    pageTimer = setInterval(load, 10000);
    return { live, onTask: load };
  }

  // ---- audit

  function audit(main) {
    main.append(h('h1', { text: 'Audit log' }), h('p.muted', { text: 'Every change made through the API, newest first (request bodies are never recorded).' }));
    const body = h('div', {}, loadingBox('Loading the audit log…'));
    main.append(body);
    let list = null;
    let failure = null;
    async function load() {
      try { list = await api('GET', '/api/audit?limit=200'); failure = null; } catch (e) { failure = e; }
      update();
    }
    function live() {
      if (failure) { body.replaceChildren(errorBox(failure)); return; }
      if (!list) return;
      if (list.length === 0) { body.replaceChildren(empty('Nothing has been changed through the API yet.')); return; }
      const td = (label, content, cls) => h('td', { 'data-label': label, class: cls }, content);
      body.replaceChildren(h('div.table-wrap', {}, h('table.stack', { id: 'audit-table' },
        h('thead', {}, h('tr', {}, ['When', 'Who', 'From', 'Request', 'Status', 'Detail'].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', {}, list.map((a) => h('tr', {},
          td('When', when(a.at_ms), 'num'),
          td('Who', a.actor),
          td('From', a.remote),
          td('Request', h('code', { text: `${a.method} ${a.path}` })),
          td('Status', badge(String(a.status), a.status < 400 ? 'ok' : 'error')),
          td('Detail', a.detail || a.result || '')))))));
    }
    load();
    pageTimer = setInterval(load, 5000);
    return { live };
  }

  // ---- config center (module-config)

  const CONFIG = '/api/module/config';

  function config(main, [app, cluster, ns]) {
    main.append(h('nav.crumbs', { 'aria-label': 'Breadcrumb' },
      h('a', { href: '#/config', text: 'Config' }),
      app ? ['›', h('a', { href: `#/config/${enc(app)}`, text: app })] : null,
      ns ? ['›', h('span', { text: `${cluster} / ${ns}` })] : null));
    const body = h('div', {}, loadingBox());
    main.append(body);
    if (!moduleLoaded('config')) {
      body.replaceChildren(empty('module-config is not loaded on this host: load module_config.so to manage configuration here.'));
      return null;
    }
    if (!app) configApps(body);
    else if (!ns) configApp(body, app);
    else configNamespace(body, app, cluster, ns);
    return null;
  }

  async function configEnv(app) {
    const envs = await api('GET', `${CONFIG}/openapi/v1/apps/${enc(app)}/envclusters`);
    return envs.length ? envs : [{ env: 'DEV', clusters: ['default'] }];
  }

  async function configApps(body) {
    let apps;
    try { apps = await api('GET', `${CONFIG}/openapi/v1/apps`); } catch (e) { body.replaceChildren(errorBox(e)); return; }
    const create = h('form.card', { id: 'create-app', 'aria-labelledby': 'create-app-title' },
      h('h2', { id: 'create-app-title', text: 'New app' }),
      h('div.row', {},
        h('div', {}, h('label', { for: 'new-app-id', text: 'App id' }), h('input', { id: 'new-app-id', required: true, pattern: '[A-Za-z0-9_.-]+' })),
        h('div', {}, h('label', { for: 'new-app-name', text: 'Name' }), h('input', { id: 'new-app-name' })),
        h('div', {}, h('button.primary', { type: 'submit', text: 'Create app' }))));
    create.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const id = $('#new-app-id').value.trim();
      const dto = { appId: id, name: $('#new-app-name').value.trim() || id, orgId: 'default', orgName: 'default', ownerName: state.user };
      const ok = await act(null, `App ${id} created`, () => api('POST', `${CONFIG}/openapi/v1/apps`, { app: dto, admins: [state.user] }));
      if (ok !== undefined) location.hash = `#/config/${enc(id)}`;
    });
    const list = apps.length === 0 ? empty('No apps yet: create one below.')
      : h('div.table-wrap', {}, h('table.stack', { id: 'config-apps' },
        h('thead', {}, h('tr', {}, ['App', 'Name', 'Org', 'Owner'].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', {}, apps.map((a) => h('tr', {},
          h('td', { 'data-label': 'App' }, h('a', { href: `#/config/${enc(a.appId)}`, text: a.appId })),
          h('td', { 'data-label': 'Name', text: a.name || '–' }),
          h('td', { 'data-label': 'Org', text: a.orgId || '–' }),
          h('td', { 'data-label': 'Owner', text: a.ownerName || '–' }))))));
    body.replaceChildren(h('div.toolbar', {}, h('h1', { text: 'Configuration' }),
      h('a.button', { href: '#/consumers', id: 'consumers-link', text: 'Open API consumers' })), list, create);
  }

  async function configApp(body, app) {
    let envs;
    try { envs = await configEnv(app); } catch (e) { body.replaceChildren(errorBox(e)); return; }
    const env = envs[0].env;
    const sections = await Promise.all(envs[0].clusters.map(async (cluster) => {
      try {
        const nss = await api('GET', `${CONFIG}/openapi/v1/envs/${enc(env)}/apps/${enc(app)}/clusters/${enc(cluster)}/namespaces`);
        return h('section.card', { 'aria-labelledby': `cl-${cluster}` }, h('h2', { id: `cl-${cluster}`, text: `Cluster ${cluster}` }),
          nss.length === 0 ? empty('No namespaces.') : h('div.table-wrap', {}, h('table.stack', { class: 'namespaces' },
            h('thead', {}, h('tr', {}, ['Namespace', 'Format', 'Scope', 'Items'].map((t) => h('th', { scope: 'col', text: t })))),
            h('tbody', {}, nss.map((n) => h('tr', {},
              h('td', { 'data-label': 'Namespace' }, h('a', { href: `#/config/${enc(app)}/${enc(cluster)}/${enc(n.namespaceName)}`, text: n.namespaceName })),
              h('td', { 'data-label': 'Format', text: n.format || 'properties' }),
              h('td', { 'data-label': 'Scope', text: n.isPublic ? 'public' : 'private' }),
              h('td', { 'data-label': 'Items', class: 'num', text: n.items ? n.items.length : '–' })))))));
      } catch (e) {
        return h('section.card', {}, h('h2', { text: `Cluster ${cluster}` }), errorBox(e));
      }
    }));
    const create = h('form.card', { id: 'create-ns', 'aria-labelledby': 'create-ns-title' },
      h('h2', { id: 'create-ns-title', text: 'New namespace' }),
      h('div.row', {},
        h('div', {}, h('label', { for: 'new-ns-name', text: 'Name' }), h('input', { id: 'new-ns-name', required: true })),
        h('div', {}, h('label', { for: 'new-ns-format', text: 'Format' }),
          h('select', { id: 'new-ns-format' }, ['properties', 'json', 'yaml', 'yml', 'xml', 'txt'].map((f) => h('option', { value: f, text: f })))),
        h('div', {}, h('button.primary', { type: 'submit', text: 'Create namespace' }))));
    create.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const name = $('#new-ns-name').value.trim();
      const dto = { name, appId: app, format: $('#new-ns-format').value, isPublic: false, appendNamespacePrefix: true, dataChangeCreatedBy: state.user };
      const ok = await act(null, `Namespace ${name} created`, () => api('POST', `${CONFIG}/openapi/v1/apps/${enc(app)}/appnamespaces`, dto));
      if (ok !== undefined) configApp(body, app);
    });
    body.replaceChildren(h('h1', {}, `App ${app} `, h('span.muted', { text: `(${env})` })), ...sections, create,
      widgets.accessKeys(app).element);
  }

  /** An item's Open API path below a namespace's `base`: keys other than plain names go
   *  base64-encoded (`encodedItems`), as Ctrip's Open API has it. */
  function configItemPath(base, key) {
    return /^[A-Za-z0-9_.-]+$/.test(key) ? `${base}/items/${enc(key)}`
      : `${base}/encodedItems/${enc(btoa(String.fromCharCode(...new TextEncoder().encode(key))))}`;
  }

  async function configNamespace(body, app, cluster, ns) {
    let env;
    try { env = (await configEnv(app))[0].env; } catch (e) { body.replaceChildren(errorBox(e)); return; }
    const base = `${CONFIG}/openapi/v1/envs/${enc(env)}/apps/${enc(app)}/clusters/${enc(cluster)}/namespaces/${enc(ns)}`;
    const admin = `${CONFIG}/admin/apps/${enc(app)}/clusters/${enc(cluster)}/namespaces/${enc(ns)}`;
    const itemPath = (key) => configItemPath(base, key);
    const fileFormat = /\.(json|ya?ml|xml|txt)$/i.test(ns);

    const itemsBox = h('div', {}, loadingBox('Loading items…'));
    const changesBox = h('div', {}, loadingBox('Loading changes…'));
    const historyBox = h('div', {}, loadingBox('Loading history…'));
    const editError = h('p.error', { id: 'item-error', role: 'alert', hidden: true });
    const keyInput = h('input', { id: 'item-key', required: true, value: fileFormat ? 'content' : '', readonly: fileFormat });
    const valueInput = h('textarea', { id: 'item-value', rows: fileFormat ? 12 : 3 });
    const commentInput = h('input', { id: 'item-comment' });
    const form = h('form.card', { id: 'item-form', 'aria-labelledby': 'item-form-title' },
      h('h2', { id: 'item-form-title', text: fileFormat ? 'Edit the file' : 'Add or change an item' }),
      editError,
      h('label', { for: 'item-key', text: 'Key' }), keyInput,
      h('label', { for: 'item-value', text: 'Value' }), valueInput,
      h('label', { for: 'item-comment', text: 'Comment (optional)' }), commentInput,
      h('div.actions', {}, h('button.primary', { type: 'submit', id: 'item-save', text: 'Save (not yet released)' })));
    const releaseButton = h('button.primary', { type: 'button', id: 'release', text: 'Release…' });

    async function loadItems() {
      try {
        const page = await api('GET', `${base}/items?page=0&size=500`);
        const items = page.content || [];
        if (fileFormat && items[0]) valueInput.value = items[0].value;
        itemsBox.replaceChildren(items.length === 0 ? empty('No items yet: add one with the form.')
          : h('div.table-wrap', {}, h('table.stack', { id: 'items-table' },
            h('thead', {}, h('tr', {}, ['Key', 'Value', 'Comment', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
            h('tbody', {}, items.map((it) => {
              const edit = h('button', { type: 'button', text: 'Edit', 'aria-label': `Edit ${it.key}` });
              edit.addEventListener('click', () => {
                keyInput.value = it.key; valueInput.value = it.value; commentInput.value = it.comment || '';
                valueInput.focus();
              });
              const del = h('button.danger', { type: 'button', text: 'Delete', 'aria-label': `Delete ${it.key}` });
              del.addEventListener('click', async () => {
                if (!await ask({ title: `Delete ${it.key}?`, message: 'Clients lose it with the next release.', ok: 'Delete', danger: true })) return;
                await act(del, `${it.key} deleted`, () => api('DELETE', `${itemPath(it.key)}?operator=${enc(state.user)}`));
                refresh();
              });
              return h('tr', { 'data-item': it.key },
                h('td', { 'data-label': 'Key' }, h('code', { text: it.key })),
                h('td', { 'data-label': 'Value' }, h('code', { text: it.value.length > 200 ? `${it.value.slice(0, 200)}…` : it.value })),
                h('td', { 'data-label': 'Comment', text: it.comment || '' }),
                h('td', { 'data-label': 'Actions' }, h('div.actions', {}, edit, del)));
            })))));
      } catch (e) { itemsBox.replaceChildren(errorBox(e)); }
    }

    async function loadChanges() {
      try {
        const c = await api('GET', `${admin}/changes`);
        const added = Object.entries(c.added || {}), modified = Object.entries(c.modified || {}), deleted = Object.entries(c.deleted || {});
        const none = added.length + modified.length + deleted.length === 0;
        releaseButton.disabled = none;
        changesBox.replaceChildren(none ? empty('Nothing to release: the items are as last released.')
          : h('ul.events', { id: 'changes' },
            added.map(([k, v]) => h('li.diff-add', {}, h('code', { text: `+ ${k} = ${v}` }))),
            modified.map(([k, v]) => h('li.diff-mod', {}, h('code', { text: `~ ${k}: ${v.old} → ${v.new}` }))),
            deleted.map(([k, v]) => h('li.diff-del', {}, h('code', { text: `- ${k} = ${v}` })))));
      } catch (e) { changesBox.replaceChildren(errorBox(e)); }
    }

    async function loadHistory() {
      try {
        const releases = await api('GET', `${admin}/releases`);
        if (releases.length === 0) { historyBox.replaceChildren(empty('Never released.')); return; }
        const latest = releases.find((r) => !r.abandoned && !r.branch && !r.branchOf);
        historyBox.replaceChildren(h('div.table-wrap', {}, h('table.stack', { id: 'history-table' },
          h('thead', {}, h('tr', {}, ['Id', 'Title', 'Author', 'Time', 'State', 'Keys', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
          h('tbody', {}, releases.map((r) => {
            const isLatest = latest && r.id === latest.id;
            let rollback = null;
            if (isLatest) {
              rollback = h('button.danger', { type: 'button', text: 'Roll back', 'aria-label': `Roll back release ${r.id}` });
              rollback.addEventListener('click', async () => {
                if (!await ask({ title: `Roll back release ${r.id}?`, message: 'Clients get the release before it again.', ok: 'Roll back', danger: true })) return;
                await act(rollback, `Release ${r.id} rolled back`, () => api('PUT', `${CONFIG}/openapi/v1/envs/${enc(env)}/releases/${r.id}/rollback?operator=${enc(state.user)}`));
                refresh();
              });
            }
            const st = r.abandoned ? 'abandoned' : (r.branch || r.branchOf ? 'gray' : (isLatest ? 'latest' : '–'));
            return h('tr', { 'data-release': r.id },
              h('td', { 'data-label': 'Id', class: 'num', text: r.id }),
              h('td', { 'data-label': 'Title', text: r.name || '–' }),
              h('td', { 'data-label': 'Author', text: r.author || '–' }),
              h('td', { 'data-label': 'Time', text: r.time ? when(Date.parse(r.time) || r.time) : '–' }),
              h('td', { 'data-label': 'State' }, st === '–' ? '–' : badge(st, st === 'latest' ? 'ok' : 'info')),
              h('td', { 'data-label': 'Keys', class: 'num', text: r.configurations ? Object.keys(r.configurations).length : '–' }),
              h('td', { 'data-label': 'Actions' }, rollback || '–'));
          })))));
      } catch (e) { historyBox.replaceChildren(errorBox(e)); }
    }

    // The gray branch (config-gray.js): its releases show in the history below.
    const gray = widgets.grayBranch({ app, cluster, ns, env, base, user: state.user, onRelease: () => loadHistory() });
    function refresh() { loadItems(); loadChanges(); loadHistory(); gray.refresh(); }

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      editError.hidden = true;
      const key = keyInput.value.trim();
      const dto = { key, value: valueInput.value, dataChangeLastModifiedBy: state.user, dataChangeCreatedBy: state.user };
      if (commentInput.value) dto.comment = commentInput.value;
      const save = $('#item-save');
      save.disabled = true;
      try {
        await api('PUT', `${itemPath(key)}?createIfNotExists=true`, dto);
        toast(`${key} saved; release to push it to clients`);
        if (!fileFormat) { keyInput.value = ''; valueInput.value = ''; commentInput.value = ''; }
        refresh();
      } catch (e) {
        // Format validation (JSON/YAML/XML with line and column) is the module's answer.
        editError.textContent = e.message;
        editError.hidden = false;
        editError.focus();
      } finally { save.disabled = false; }
    });

    releaseButton.addEventListener('click', async () => {
      const values = await ask({ title: `Release ${ns}`, message: `Publish the working items of ${app}/${cluster}/${ns} to its clients.`, ok: 'Release',
        fields: [{ name: 'title', label: 'Release title', value: `release ${new Date().toISOString().slice(0, 19)}`, required: true },
          { name: 'comment', label: 'Comment (optional)', multiline: false }] });
      if (!values) return;
      const dto = { releaseTitle: values.title, releasedBy: state.user, isEmergencyPublish: false };
      if (values.comment) dto.releaseComment = values.comment;
      await act(releaseButton, `${ns} released`, () => api('POST', `${base}/releases`, dto));
      refresh();
    });

    editError.setAttribute('tabindex', '-1');
    body.replaceChildren(
      h('div.toolbar', {}, h('h1', {}, `${ns} `, h('span.muted', { text: `${app} · ${cluster} · ${env}` })), releaseButton),
      h('div.grid', {},
        h('section.card', { 'aria-labelledby': 'items-title' }, h('h2', { id: 'items-title', text: 'Items (working copy)' }), itemsBox),
        h('div', {}, form,
          h('section.card', { 'aria-labelledby': 'changes-title' }, h('h2', { id: 'changes-title', text: 'Changes since the last release' }), changesBox))),
      gray.element,
      h('section.card', { 'aria-labelledby': 'history-title' }, h('h2', { id: 'history-title', text: 'Release history' }), historyBox));
    refresh();
  }

  // ---------------------------------------------------------------- pages in other files

  // The pages of gateway.js, catalog.js, backups.js, files.js (and charts.js's widget) register here; they load
  // after this file (`defer` keeps document order) and before the first route().
  const extraPages = {};
  // Parts of core pages drawn by other files (charts.js: `serviceCharts`; config-gray.js:
  // `grayBranch`; access-keys.js: `accessKeys`).
  const widgets = {};
  window.apollo = Object.freeze({
    h, api, enc, bytes, when, clock, badge, toast, ask, act, empty, loadingBox, errorBox, moduleLoaded, update, configItemPath,
    CONFIG,
    pages: extraPages,
    widgets,
    /** The page's one periodic job, stopped when the page is left. */
    every(ms, fn) { clearInterval(pageTimer); pageTimer = setInterval(fn, ms); },
    /** Run when the page is left (close a stream, drop a poller's state). */
    onLeave(fn) { pageCleanup = fn; },
  });

  // ---------------------------------------------------------------- boot

  window.addEventListener('hashchange', route);
  // Anything the content security policy blocks is a bug of this page: count it where
  // the end-to-end test (and a developer's console) can see it.
  document.addEventListener('securitypolicyviolation', (e) => {
    const root = document.documentElement;
    root.dataset.cspViolations = String(Number(root.dataset.cspViolations || 0) + 1);
    console.error(`CSP blocked ${e.blockedURI || 'inline code'} (${e.violatedDirective})`);
  });
  document.addEventListener('DOMContentLoaded', () => {
    $('#login-form').addEventListener('submit', onLogin);
    $('#logout').addEventListener('click', logout);
    start();
  });
})();
