/**
 * The dashboard's lag chart (part of its script, see dashboard-script.ts; it uses that
 * script's h, fmtMs and fmtBytes): one SVG polyline per replica over the window, a
 * break where the lag is unknown (replica unhealthy), gridlines at 0, half and a round
 * maximum, and a legend with each replica's latest figure. Drawn inside the page's own
 * <svg> element, with its namespaceURI: no URL in the page.
 */
export const LAG_CHART = `
  /* -------------------------------------------------------- lag chart */

  var W = 640, H = 180, L = 64, R = 8, T = 8, B = 22;
  function svgEl(svg, tag, attrs, text) {
    var e = document.createElementNS(svg.namespaceURI, tag);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function niceMax(v) {
    if (!(v > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
    return 10 * p;
  }

  function renderLag(s) {
    var svg = s.el.querySelector('svg.chart');
    var legend = s.el.querySelector('.legend');
    var key = s.unit === 'bytes' ? 'lagBytes' : 'lagMs';
    var fmt = s.unit === 'bytes' ? fmtBytes : fmtMs;
    svg.replaceChildren();
    legend.replaceChildren();
    var end = s.lag.length ? s.lag[s.lag.length - 1].at : Date.now();
    var start = end - s.lagWindow;
    var ids = [];
    var max = 0;
    s.lag.forEach(function (smp) {
      Object.keys(smp.replicas).forEach(function (id) {
        if (ids.indexOf(id) < 0) ids.push(id);
        var v = smp.replicas[id][key];
        if (v !== null && v > max) max = v;
      });
    });
    ids.sort();
    var top = niceMax(max);
    var x = function (t) { return L + ((t - start) / s.lagWindow) * (W - L - R); };
    var y = function (v) { return T + (1 - v / top) * (H - T - B); };
    [0, top / 2, top].forEach(function (v) {
      svg.append(svgEl(svg, 'line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid-line' }));
      svg.append(svgEl(svg, 'text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmt(v)));
    });
    svg.append(svgEl(svg, 'text', { x: L, y: H - 6 }, '−15 min'));
    svg.append(svgEl(svg, 'text', { x: (L + W - R) / 2, y: H - 6, 'text-anchor': 'middle' }, '−7.5 min'));
    svg.append(svgEl(svg, 'text', { x: W - R, y: H - 6, 'text-anchor': 'end' }, s.lag.length ? 'now ' + new Date(end).toISOString().slice(11, 19) : 'no samples yet'));
    ids.forEach(function (id, i) {
      var color = COLORS[i % COLORS.length];
      var run = [];
      var flush = function () {
        if (run.length === 1) svg.append(svgEl(svg, 'circle', { cx: run[0][0], cy: run[0][1], r: 2, fill: color, class: 'point', 'data-node': id }));
        else if (run.length > 1) svg.append(svgEl(svg, 'polyline', { points: run.map(function (p) { return p[0].toFixed(1) + ',' + p[1].toFixed(1); }).join(' '), stroke: color, class: 'series', 'data-node': id }));
        run = [];
      };
      s.lag.forEach(function (smp) {
        var pt = smp.replicas[id];
        var v = pt ? pt[key] : null;
        if (v === null || v === undefined) { flush(); return; }
        run.push([x(smp.at), y(v)]);
      });
      flush();
      var li = h('li');
      li.dataset.node = id;
      var sw = h('span', 'swatch', '━');
      sw.style.color = color;
      // the legend says now: the latest sample only (a replica promoted since is no replica now)
      var now = s.lag.length ? s.lag[s.lag.length - 1].replicas[id] : undefined;
      var v = now ? now[key] : null;
      li.append(sw, h('span', null, id + ': ' + (!now ? 'not a replica now' : v === null ? 'unknown' : fmt(v))));
      legend.append(li);
    });
    if (!ids.length) legend.append(h('li', 'muted', 'no replicas'));
  }

`;
