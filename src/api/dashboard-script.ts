/**
 * The dashboard's script (see dashboard.ts): plain ES2020 in the browser, no library.
 * It builds the DOM with textContent only (no innerHTML), draws the lag chart as SVG
 * inside the page's own <svg> elements (their namespaceURI, no URL in the page), and
 * follows changes live: the routing stream (SSE), and polls of events, lag and history.
 */
import { LAG_CHART } from './dashboard-chart.js';
import { HISTORY } from './dashboard-history.js';

export const DASHBOARD_SCRIPT = `
(function () {
  'use strict';
  var MAX_EVENTS = 200;
  var COLORS = ['#0969da', '#bf8700', '#8250df', '#1b7c83', '#e16f24', '#cf222e', '#1a7f37', '#6e7781'];
  var init = JSON.parse(document.getElementById('init').textContent);
  var live = document.getElementById('live');
  var nav = document.getElementById('clusters');
  var sections = document.querySelectorAll('section.cluster');
  var open = 0;

  function h(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function base(name) { return 'v1/clusters/' + encodeURIComponent(name); }
  function num(v, unit) { return v === null || v === undefined ? '?' : v + (unit || ''); }
  function setLive() {
    live.textContent = open === state.length ? 'live' : open ? 'partly live' : 'reconnecting';
    live.className = 'badge ' + (open === state.length ? 'ok' : 'warn');
  }

  var state = init.map(function (c, i) {
    return { summary: c, table: c.table, refreshedAt: Date.now(), cursor: '0-0', events: [], el: sections[i], open: false,
      lag: [], lagAfter: 0, lagWindow: 900000, lagEvery: 2000, unit: 'ms', history: [], explained: null };
  });

  var PHASES = { bootstrapping: 'bootstrapping: no primary yet', healthy: 'healthy', degraded: 'degraded: a replica is down',
    'primary-down': 'primary down: no primary taking writes', 'failing-over': 'failing over', 'switching-over': 'switching over' };
  function phaseClass(p) { return p === 'healthy' ? 'ok' : p === 'degraded' || p === 'bootstrapping' ? 'warn' : 'bad'; }
  function fmtTime(t) { var d = new Date(t); return isNaN(d.getTime()) ? String(t) : d.toISOString(); }
  function fmtMs(v) { return v < 10 && v % 1 ? v.toFixed(1) + ' ms' : v < 1000 ? Math.round(v) + ' ms' : v < 60000 ? (v / 1000).toFixed(1) + ' s' : (v / 60000).toFixed(1) + ' min'; }
  function fmtBytes(v) {
    if (v < 1024) return Math.round(v) + ' B';
    var units = ['kB', 'MB', 'GB', 'TB']; var i = -1;
    do { v /= 1024; i++; } while (v >= 1024 && i < units.length - 1);
    return (v < 10 ? v.toFixed(1) : Math.round(v)) + ' ' + units[i];
  }

  /* ---------------------------------------------------------- topology */

  function renderHeader(s) {
    var header = s.el.querySelector('header');
    header.querySelector('.meta').textContent = s.table.engine + ' · generation ' + s.table.generation + ' · epoch ' + s.table.epoch;
    var b = header.querySelector('.badges');
    b.replaceChildren();
    var phase = s.table.phase;
    if (phase) b.append(h('span', 'badge ' + phaseClass(phase), PHASES[phase] || phase), ' ');
    b.append(h('span', 'badge ' + (s.table.writable ? 'ok' : 'bad'), s.table.writable ? 'writable' : 'not writable'));
    if (paused(s)) b.append(' ', h('span', 'badge bad', 'PAUSED: no automatic failover'));
    b.append(' ', h('span', 'badge', 'leader ' + (s.summary.leader || 'none')));
    if (s.summary.servedByLeader) b.append(' ', h('span', 'badge ok', 'this coordinator leads'));
  }
  function paused(s) { return s.table.paused !== undefined ? s.table.paused : s.summary.paused; }

  function renderTopology(s) {
    var t = s.table;
    var box = s.el.querySelector('.topology');
    box.replaceChildren();
    var p = h('div', 'primary');
    p.append(h('b', null, 'primary '));
    if (t.primary) p.append(h('span', 'ok', t.primary.id), h('span', 'muted', t.primary.host + ':' + t.primary.port + (t.primary.zone ? ' · ' + t.primary.zone : '') + (t.primary.draining ? ' · draining' : '')));
    else p.append(h('span', 'bad', 'none: no node may take writes'));
    box.append(p);
    if (t.blocked) box.append(h('p', 'bad', 'failover blocked: ' + t.blocked));
    var replicas = {};
    t.replicas.forEach(function (r) { replicas[r.id] = r; });
    // every registered node, down ones included (older coordinators: the replicas only)
    var nodes = t.nodes || t.replicas.map(function (r) {
      return { id: r.id, host: r.host, port: r.port, zone: r.zone, role: 'replica', phase: r.healthy ? 'replica' : 'replica-down', healthy: r.healthy, reason: r.healthy ? 'streaming' : 'unhealthy' };
    });
    var table = h('table', 'nodes');
    var head = h('tr');
    // a MongoDB set: staleness (server selection) instead of bytes, optimes, the last write instead of sync
    var set = t.engine === 'mongodb';
    (set ? ['node', 'role', 'phase', 'address', 'staleness ms', 'lag ms', 'optime', 'last write', 'reason'] : ['node', 'role', 'phase', 'address', 'lag bytes', 'lag ms', 'replay LSN', 'sync', 'reason']).forEach(function (x) { head.append(h('th', null, x)); });
    table.append(head);
    nodes.forEach(function (n) {
      var r = replicas[n.id];
      var isPrimary = t.primary && t.primary.id === n.id;
      // an unhealthy replica's last figures say nothing about now: no "lag 0" for it
      var showLag = r && r.healthy;
      var tr = h('tr');
      tr.append(h('td', null, n.id), h('td', null, isPrimary ? 'primary' : n.role === 'primary' ? 'primary (down)' : 'replica'),
        h('td', n.healthy ? 'ok' : 'bad', n.phase), h('td', null, n.host + ':' + n.port + (n.zone ? ' · ' + n.zone : '')),
        h('td', 'num', showLag ? num(set ? r.stalenessMs : r.lagBytes) : '–'), h('td', 'num', showLag ? num(r.lagMs) : '–'),
        h('td', null, r && r.replayLsn && showLag ? r.replayLsn : '–'),
        set ? h('td', null, r && r.lastWriteDate ? fmtTime(r.lastWriteDate) : isPrimary && t.primary.lastWriteDate ? fmtTime(t.primary.lastWriteDate) : '–') : h('td', null, r ? (r.sync ? 'sync' : 'async') : ''),
        h('td', n.healthy ? null : 'bad', n.reason));
      table.append(tr);
    });
    if (!nodes.length) { var none = h('tr'); var td = h('td', 'muted', 'no nodes registered yet'); td.colSpan = 9; none.append(td); table.append(none); }
    box.append(table, h('p', 'muted', 'data refreshed ' + fmtTime(s.refreshedAt) + ' · last topology change ' + fmtTime(t.updatedAt)));
  }

  /* ------------------------------------------------------ cluster list */

  function renderClusterList() {
    if (!nav) return;
    var body = nav.querySelector('tbody');
    body.replaceChildren();
    state.forEach(function (s) {
      var t = s.table;
      var tr = h('tr');
      var name = h('button', null, s.summary.name);
      name.type = 'button';
      name.addEventListener('click', function () { s.el.scrollIntoView({ behavior: 'smooth', block: 'start' }); });
      var cell = h('td'); cell.append(name);
      tr.append(cell, h('td', null, t.engine), h('td', t.primary ? null : 'bad', t.primary ? t.primary.id : 'none'),
        h('td', t.phase ? phaseClass(t.phase) : null, t.phase || ''), h('td', t.writable ? 'ok' : 'bad', t.writable ? 'writable' : 'not writable'),
        h('td', paused(s) ? 'bad' : null, paused(s) ? 'PAUSED' : 'automatic'), h('td', null, s.summary.leader || 'none'));
      body.append(tr);
    });
  }

  /* ------------------------------------------------------------ journal */

  function summarize(data) {
    var parts = [];
    Object.keys(data || {}).forEach(function (k) {
      var v = data[k];
      if (k === 'evidence' || v === null || v === undefined || typeof v === 'object') return;
      parts.push(k + '=' + v);
    });
    var s = parts.join(' ');
    return s.length > 240 ? s.slice(0, 240) + '…' : s;
  }

  function renderEvents(s) {
    var ol = s.el.querySelector('.timeline');
    ol.replaceChildren();
    for (var i = s.events.length - 1; i >= 0; i--) {
      var e = s.events[i];
      var li = h('li');
      var tm = h('time', null, fmtTime(e.at));
      tm.dateTime = e.at;
      li.append(tm, h('span', 'type', e.type), h('span', 'data', summarize(e.data)));
      ol.append(li);
    }
    if (!s.events.length) ol.append(h('li', 'muted', 'no events yet'));
  }

${LAG_CHART}
  function pollLag(s) {
    getJson(base(s.summary.name) + '/lag' + (s.lagAfter ? '?after=' + s.lagAfter : '')).then(function (r) {
      s.lagWindow = r.windowMs;
      s.lagEvery = r.intervalMs;
      if (r.samples.length) {
        s.lag = s.lag.concat(r.samples);
        s.lagAfter = r.samples[r.samples.length - 1].at;
        var oldest = s.lagAfter - s.lagWindow;
        while (s.lag.length && s.lag[0].at < oldest) s.lag.shift();
      }
      renderLag(s);
      setTimeout(function () { pollLag(s); }, Math.max(500, s.lagEvery));
    }).catch(function () { setTimeout(function () { pollLag(s); }, 3000); });
  }

${HISTORY}
  /* ---------------------------------------------------------- plumbing */

  function render(s) { renderHeader(s); renderTopology(s); renderClusterList(); }

  // with a read token configured (body data-read-token="required"), every request
  // carries it; it is asked for once and kept for this tab only (sessionStorage)
  var needToken = document.body.dataset.readToken === 'required';
  var token = null;
  try { token = sessionStorage.getItem('switchyard.readToken'); } catch (e) { token = null; }
  function headers() {
    var hd = { accept: 'application/json' };
    if (token) hd.authorization = 'Bearer ' + token;
    return hd;
  }
  function askToken(why) {
    var box = document.getElementById('token');
    box.hidden = false;
    box.querySelector('.why').textContent = why;
    box.querySelector('input').focus();
  }
  function getJson(url) {
    return fetch(url, { headers: headers(), cache: 'no-store' }).then(function (r) {
      if (r.status === 401 && needToken) askToken('the read token was refused: enter it again');
      if (!r.ok) throw new Error(url + ': ' + r.status);
      return r.json();
    });
  }

  function refreshSummaries() {
    return getJson('v1/clusters').then(function (list) {
      list.forEach(function (c) {
        state.forEach(function (s) { if (s.summary.name === c.name) { Object.assign(s.summary, c); renderHeader(s); } });
      });
      renderClusterList();
    }).catch(function () {});
  }

  function onTable(s, t) {
    var changed = t.generation !== s.table.generation;
    s.table = t; s.refreshedAt = Date.now(); render(s);
    if (changed) refreshHistory(s);
  }
  function connected(s, up) {
    if (up && !s.open) { s.open = true; open++; setLive(); }
    if (!up && s.open) { s.open = false; open--; setLive(); }
  }
  function follow(s) {
    if (token) return longPoll(s);
    var es = new EventSource(base(s.summary.name) + '/routing/stream');
    es.addEventListener('routing', function (ev) { onTable(s, JSON.parse(ev.data)); });
    es.onopen = function () { connected(s, true); };
    es.onerror = function () { connected(s, false); };
  }
  // an EventSource cannot send the token: long-poll the table with its ETag instead
  function longPoll(s) {
    var etag = null;
    function next() {
      var hd = headers();
      if (etag) hd['if-none-match'] = etag;
      fetch(base(s.summary.name) + '/routing' + (etag ? '?waitMs=25000' : ''), { headers: hd, cache: 'no-store' }).then(function (r) {
        if (r.status === 304) { connected(s, true); return next(); }
        if (!r.ok) throw new Error('routing: ' + r.status);
        etag = r.headers.get('etag');
        return r.json().then(function (t) { connected(s, true); onTable(s, t); next(); });
      }).catch(function () { connected(s, false); setTimeout(next, 3000); });
    }
    next();
  }

  // poll the journal: page forward until caught up, then every second
  function poll(s) {
    getJson(base(s.summary.name) + '/events?limit=500&after=' + encodeURIComponent(s.cursor)).then(function (r) {
      s.cursor = r.next;
      if (r.events.length) {
        s.events = s.events.concat(r.events).slice(-MAX_EVENTS);
        renderEvents(s);
        refreshSummaries();
        refreshHistory(s);
      }
      setTimeout(function () { poll(s); }, r.events.length === 500 ? 0 : 1000);
    }).catch(function () { setTimeout(function () { poll(s); }, 3000); });
  }

  // the stream sends a table per new version; lag within the hysteresis makes none, so poll it
  function refreshLag(s) {
    getJson(base(s.summary.name) + '/routing').then(function (t) { if (t.generation >= s.table.generation) { s.table = t; s.refreshedAt = Date.now(); render(s); } }).catch(function () {});
  }

  state.forEach(function (s) {
    s.el.querySelectorAll('.unit button').forEach(function (b) {
      b.addEventListener('click', function () {
        s.unit = b.dataset.unit;
        s.el.querySelectorAll('.unit button').forEach(function (o) { o.className = o === b ? 'on' : ''; });
        renderLag(s);
      });
    });
    render(s); renderEvents(s); renderHistory(s); renderLag(s);
  });
  setLive();

  var started = false;
  function start() {
    if (started) return;
    started = true;
    state.forEach(function (s) {
      follow(s); poll(s); pollLag(s); refreshHistory(s);
      setInterval(function () { refreshLag(s); }, 2000);
    });
    setInterval(refreshSummaries, 10000);
  }
  var tokenBox = document.getElementById('token');
  tokenBox.querySelector('button').addEventListener('click', function () {
    var v = tokenBox.querySelector('input').value.trim();
    if (!v) return;
    token = v;
    try { sessionStorage.setItem('switchyard.readToken', v); } catch (e) { /* private mode: this page only */ }
    tokenBox.hidden = true;
    start();
  });
  tokenBox.querySelector('input').addEventListener('keydown', function (ev) { if (ev.key === 'Enter') tokenBox.querySelector('button').click(); });
  if (needToken && !token) askToken('this coordinator has a read token: the data routes need it');
  else start();
})();
`;
