/**
 * The dashboard's failover and switchover history and the explanation of one operation
 * (part of its script, see dashboard-script.ts; it uses that script's h, getJson, base,
 * summarize and the formatters): a row per operation with start, from → to, duration,
 * loss and outcome; a click (or Enter) fetches `operations/:id` and shows the decision,
 * the evidence and every step with its time since the start, as `ctl explain` does.
 */
export const HISTORY = `
  /* --------------------------------------------- history and explain */

  function outcomeClass(o) { return o === 'success' ? 'ok' : o === 'running' ? 'warn' : 'bad'; }
  function loss(op) {
    if (op.kind === 'switchover' && !op.lostBytes) return '0 B';
    // a replica set's own election (MongoDB): nothing measured; the reason says whether writes were rolled back
    if (/^elected by the set/.test(op.reason)) return /rolled back/.test(op.reason) ? 'rolled back' : '-';
    return fmtBytes(op.lostBytes) + (op.lossMeasured ? ' (measured)' : op.kind === 'failover' ? ' (estimated)' : '');
  }

  function renderHistory(s) {
    var body = s.el.querySelector('table.history tbody');
    body.replaceChildren();
    s.history.slice().reverse().forEach(function (op) {
      var tr = h('tr');
      tr.tabIndex = 0;
      tr.dataset.op = op.id;
      if (s.explained === op.id) tr.className = 'selected';
      var started = h('td', null, fmtTime(op.startedAt).slice(11, 19));
      started.title = fmtTime(op.startedAt);
      tr.append(started, h('td', null, op.kind + ' ' + op.id), h('td', null, (op.from || '(none)') + ' → ' + op.to),
        h('td', 'num', op.durationMs === null ? 'running' : fmtMs(op.durationMs)), h('td', 'num', loss(op)), h('td', outcomeClass(op.outcome), op.outcome));
      var go = function () { explain(s, op.id); };
      tr.addEventListener('click', go);
      tr.addEventListener('keydown', function (ev) { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); go(); } });
      body.append(tr);
    });
    if (!s.history.length) { var tr = h('tr'); var td = h('td', 'muted', 'no failover or switchover yet'); td.colSpan = 6; tr.append(td); body.append(tr); }
  }

  function refreshHistory(s) {
    return getJson(base(s.summary.name) + '/history').then(function (list) {
      s.history = list;
      renderHistory(s);
      // an open explanation of an operation still running follows it
      if (s.explained) {
        var op = list.filter(function (x) { return x.id === s.explained; })[0];
        if (op && (op.outcome === 'running' || s.explainedOutcome !== op.outcome)) explain(s, op.id);
      }
    }).catch(function () {});
  }

  function step(e, t0) {
    var d = e.data || {};
    var what;
    switch (e.type) {
      case 'failover.started': what = (d.from || '-') + ' → ' + d.to + (d.reason ? ': ' + d.reason : ''); break;
      case 'promotion.succeeded': what = d.node + (d.timeline != null ? ' on timeline ' + d.timeline : '') + (d.forkLsn ? ', forked at ' + d.forkLsn : ''); break;
      case 'failover.completed': what = d.outcome + ': ' + d.reason; break;
      case 'failover.loss': what = fmtBytes(d.lostBytes) + ' lost (' + d.node + "'s end of WAL " + d.walEnd + ', fork ' + d.forkLsn + ')'; break;
      case 'follow.requested': what = d.node + ' ' + d.action + 's ' + d.upstream; break;
      default: what = summarize(Object.assign({}, d, { operationId: undefined, commandId: undefined, epoch: undefined }));
    }
    return [fmtTime(e.at), '+' + (Date.parse(e.at) - t0) + ' ms', e.type, what];
  }

  function table(headers, rows, cls) {
    var t = h('table', cls);
    var tr = h('tr');
    headers.forEach(function (x) { tr.append(h('th', null, x)); });
    t.append(tr);
    rows.forEach(function (r) {
      var row = h('tr');
      r.forEach(function (v, i) { row.append(h('td', i === r.length - 1 ? 'wrap' : null, v === null || v === undefined ? '' : v)); });
      t.append(row);
    });
    return t;
  }

  function renderExplain(s, x) {
    var box = s.el.querySelector('.explain');
    var op = x.operation;
    box.replaceChildren();
    var close = h('button', 'close', 'close');
    close.type = 'button';
    close.addEventListener('click', function () { s.explained = null; box.hidden = true; box.replaceChildren(); renderHistory(s); });
    var how = op.outcome === 'running' ? 'running' : op.outcome + (op.durationMs === null ? '' : ' in ' + fmtMs(op.durationMs));
    var title = h('h3', null, op.kind + ' ' + op.id + ': ' + (op.from || '(no primary)') + ' → ' + op.to + ', ' + how + ' ');
    title.append(close);
    var dl = h('dl');
    var by = x.entries.map(function (e) { return e.data && e.data.by; }).filter(Boolean)[0];
    var facts = [['decision', op.reason], ['started', fmtTime(op.startedAt)], ['finished', op.finishedAt ? fmtTime(op.finishedAt) : 'not yet'],
      ['loss', loss(op) + (op.forkLsn ? ', forked at ' + op.forkLsn : '')]];
    if (by) facts.push(['requested by', by]);
    facts.forEach(function (kv) { dl.append(h('dt', null, kv[0]), h('dd', 'kv-' + kv[0].replace(/ /g, '-'), kv[1])); });
    box.append(title, dl);
    box.append(h('h3', null, 'evidence'));
    var ev = (x.evidence || []).filter(function (e) { return e && typeof e === 'object'; });
    if (ev.length) {
      var cols = [];
      ev.forEach(function (e) { Object.keys(e).forEach(function (k) { if (cols.indexOf(k) < 0 && (e[k] === null || typeof e[k] !== 'object')) cols.push(k); }); });
      cols = cols.slice(0, 10);
      var cell = function (e, k) { var v = e[k]; return v === undefined ? '' : /At$/.test(k) && typeof v === 'number' ? fmtTime(v) : String(v); };
      box.append(table(cols, ev.map(function (e) { return cols.map(function (k) { return cell(e, k); }); }), 'evidence'));
    } else box.append(h('p', 'muted', 'none recorded with the decision'));
    box.append(h('h3', null, 'steps'));
    var t0 = Date.parse(op.startedAt);
    box.append(table(['time', 'since start', 'step', 'what'], x.entries.map(function (e) { return step(e, t0); }), 'steps'));
    box.hidden = false;
  }

  function explain(s, id) {
    s.explained = id;
    renderHistory(s);
    getJson(base(s.summary.name) + '/operations/' + encodeURIComponent(id)).then(function (x) {
      if (s.explained !== id) return;
      s.explainedOutcome = x.operation.outcome;
      renderExplain(s, x);
    }).catch(function (err) {
      var box = s.el.querySelector('.explain');
      box.replaceChildren(h('p', 'bad', 'cannot explain ' + id + ': ' + err.message));
      box.hidden = false;
    });
  }

`;
