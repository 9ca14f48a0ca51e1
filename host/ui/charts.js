// Service charts: a service's CPU % and RSS over the last hour, drawn as inline SVG (no
// library) from `GET /api/apps/{name}/history`, the samples the host records every
// `metrics.history_interval_secs` while the service runs. The service page (app.js)
// mounts them and calls refresh() on its periodic update.
'use strict';

(() => {
  const { h, api, enc, bytes, clock, empty, loadingBox, errorBox } = window.apollo;
  const SVG = 'http://www.w3.org/2000/svg';
  const H = 190; // px: the viewBox is as wide as the chart's box, so text keeps its size
  const PAD = { left: 78, right: 12, top: 12, bottom: 28 }; // left: room for "512.0 KiB"

  function svg(tag, attrs, ...children) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') el.textContent = v;
      else el.setAttribute(k, String(v));
    }
    el.append(...children);
    return el;
  }

  /** A round upper bound for the y axis, at least `floor`: 1, 2 or 5 times a power of ten,
   *  or (`binary`, for bytes) a power of two, so that its half is round too. */
  function niceMax(value, floor, binary) {
    const v = Math.max(value, floor);
    if (binary) return 2 ** Math.ceil(Math.log2(v));
    const p = 10 ** Math.floor(Math.log10(v));
    return [1, 2, 5, 10].map((m) => m * p).find((c) => c >= v);
  }

  /**
   * One chart: `series` is [[ms, value]], oldest first, over the window [from, to]. A gap
   * longer than `gapMs` (the service was stopped) breaks the line.
   */
  function chart({ id, title, series, from, to, gapMs, floor, binary, format, width: W }) {
    const max = niceMax(series.reduce((m, [, v]) => Math.max(m, v), 0), floor, binary);
    const x = (ms) => PAD.left + ((ms - from) / (to - from)) * (W - PAD.left - PAD.right);
    const y = (v) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
    const latest = series[series.length - 1];
    const root = svg('svg', {
      id, class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'data-points': series.length,
      'aria-label': `${title}: ${series.length} samples, latest ${format(latest[1])} at ${clock(latest[0])}`,
    }, svg('title', { text: title }));
    // Grid lines and y labels at 0, half and the top.
    for (const v of [0, max / 2, max]) {
      root.append(svg('line', { class: 'grid', x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }),
        svg('text', { class: 'axis', x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end', text: format(v) }));
    }
    // Time labels: the window's start, middle and end.
    for (const [ms, anchor] of [[from, 'start'], [(from + to) / 2, 'middle'], [to, 'end']]) {
      root.append(svg('text', { class: 'axis', x: x(ms), y: H - 8, 'text-anchor': anchor, text: clock(ms) }));
    }
    root.append(svg('line', { class: 'axis-line', x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: H - PAD.bottom }),
      svg('line', { class: 'axis-line', x1: PAD.left, x2: W - PAD.right, y1: H - PAD.bottom, y2: H - PAD.bottom }));
    let run = [];
    const flush = () => {
      if (run.length === 1) root.append(svg('circle', { class: 'dot', cx: run[0][0], cy: run[0][1], r: 2.5 }));
      else if (run.length > 1) root.append(svg('polyline', { class: 'line', points: run.map((p) => p.join(',')).join(' ') }));
      run = [];
    };
    let previous = null;
    for (const [ms, v] of series) {
      if (previous !== null && ms - previous > gapMs) flush();
      run.push([x(ms).toFixed(1), y(v).toFixed(1)]);
      previous = ms;
    }
    flush();
    return root;
  }

  const percent = (v) => `${v < 10 && v > 0 ? v.toFixed(1) : Math.round(v)} %`;

  /** The charts' card for service `name`: `{ element, refresh }`. */
  function serviceCharts(name) {
    const body = h('div', { id: 'service-charts' }, loadingBox('Loading the last hour…'));
    const element = h('section.card', { 'aria-labelledby': 'charts-title' },
      h('h2', { id: 'charts-title', text: 'CPU and memory, last hour' }), body);

    let last = null; // the last history read, redrawn when the box changes width
    let drawnWidth = 0;

    async function refresh() {
      try {
        last = await api('GET', `/api/apps/${enc(name)}/history`);
      } catch (e) {
        if (e.status !== 401) body.replaceChildren(errorBox(e));
        return;
      }
      draw();
    }

    function draw() {
      const history = last;
      drawnWidth = body.clientWidth;
      if (history.interval_secs === 0) {
        body.replaceChildren(empty('The host does not sample services (metrics.history_interval_secs is 0).'));
        return;
      }
      const points = history.points;
      if (points.length === 0) {
        body.replaceChildren(empty(`No samples yet: the host records one every ${history.interval_secs} s while the service runs.`));
        return;
      }
      const intervalMs = history.interval_secs * 1000;
      const to = Math.max(Date.now(), points[points.length - 1].at_ms);
      const from = to - history.capacity * intervalMs;
      const cpu = points.filter((p) => p.cpu_percent !== null && p.cpu_percent !== undefined).map((p) => [p.at_ms, p.cpu_percent]);
      const rss = points.map((p) => [p.at_ms, p.rss_bytes]);
      // Two charts side by side from 616 px (the .charts grid: 300 px columns, 16 px gap).
      const box = body.clientWidth || 640;
      const width = Math.max(240, Math.floor(box >= 616 ? (box - 16) / 2 : box) - 2);
      const common = { from, to, gapMs: intervalMs * 2.5, width };
      const figure = (caption, content) => h('figure.chart-box', {}, h('figcaption', { text: caption }), content);
      body.replaceChildren(h('div.charts', {},
        figure('CPU (% of one core)', cpu.length === 0 ? empty('No CPU figure yet: it takes two samples.')
          : chart({ id: 'chart-cpu', title: 'CPU %', series: cpu, floor: 5, format: percent, ...common })),
        figure('Resident memory (RSS)', chart({ id: 'chart-rss', title: 'RSS', series: rss, floor: 1024 * 1024, binary: true, format: bytes, ...common }))),
      h('p.muted', { text: `One sample every ${history.interval_secs} s, the last ${history.capacity} kept.` }));
    }

    // A phone turned, a window resized: drawn again at the new width, so text keeps its size.
    new ResizeObserver(() => { if (last && Math.abs(body.clientWidth - drawnWidth) > 8) draw(); }).observe(body);
    refresh();
    return { element, refresh };
  }

  window.apollo.widgets.serviceCharts = serviceCharts;
})();
