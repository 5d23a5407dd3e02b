/**
 * The operator page's script, sent as it is written (no build step). It reads the JSON API at
 * /admin/api (the same routers as /api, see router.ts) and redraws itself every few seconds.
 * Plain ES2017 without template literals, so that it can live in this TypeScript string.
 */
export const ADMIN_SCRIPT = String.raw`(function () {
  'use strict';
  var API = '/admin/api';
  var POLL_MS = 4000;
  var PAGE = 25;
  var MARK_LIMIT = 400;
  var body = document.body;
  var READ_ONLY = body.getAttribute('data-read-only') === 'true';
  var SVGNS = 'http://www.w3.org/2000/svg';
  var state = { health: null, window: null, config: null, details: {}, marks: [], pick: null, span: 'fit',
    table: { cursor: null, history: [], next: null, rows: [] } };

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  // ---- the API ------------------------------------------------------------------------------
  function api(path, opts) {
    opts = opts || {};
    var headers = { Accept: 'application/json' };
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    if (opts.async) headers.Prefer = 'respond-async';
    return fetch(API + path, {
      method: opts.method || 'GET', headers: headers, credentials: 'same-origin',
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body)
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (json) {
        var fine = res.ok || (opts.allow && opts.allow.indexOf(res.status) >= 0);
        if (!fine) {
          var err = new Error((json.error && json.error.message) || (res.status + ' ' + res.statusText));
          err.status = res.status;
          throw err;
        }
        return json;
      });
    });
  }

  // ---- times and sizes ----------------------------------------------------------------------
  var LOCAL = { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' };
  function ms(iso) { return typeof iso === 'number' ? iso : Date.parse(iso); }
  function local(iso) { return new Date(ms(iso)).toLocaleString(undefined, LOCAL); }
  function utc(iso) { return new Date(ms(iso)).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'); }
  function timeEl(iso) {
    var t = el('time', { datetime: new Date(ms(iso)).toISOString(), title: utc(iso) }, local(iso));
    return t;
  }
  function ago(seconds) {
    if (seconds === null || seconds === undefined) return '';
    if (seconds < 90) return Math.round(seconds) + ' s ago';
    if (seconds < 5400) return Math.round(seconds / 60) + ' min ago';
    if (seconds < 172800) return Math.round(seconds / 3600) + ' h ago';
    return Math.round(seconds / 86400) + ' days ago';
  }
  function bytes(n) {
    if (n === null || n === undefined) return '—';
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + ' ' + units[i];
  }
  /** The value of a datetime-local input for a moment, in the browser's time zone, to the second. */
  function inputValue(t) {
    var d = new Date(t);
    function p(n) { return String(n).padStart(2, '0'); }
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' + p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
  }
  function line(parent, text, cls) { var s = el('small', cls ? { class: cls } : null, text); parent.appendChild(s); return s; }

  // ---- state at a glance --------------------------------------------------------------------
  function verificationOf(id) { var d = state.details[id]; return d ? d.lastVerification || null : undefined; }
  function verificationClass(b) {
    if (b.status === 'failed') return 'failed';
    var v = verificationOf(b.id);
    return v ? (v.valid ? 'valid' : 'invalid') : 'never';
  }

  function renderState() {
    var h = state.health;
    if (!h) return;
    var verdict = $('verdict');
    verdict.className = 'verdict ' + h.status;
    verdict.setAttribute('data-status', h.status);
    var n = (h.problems || []).length;
    verdict.textContent = { ok: 'Healthy', degraded: 'Degraded', down: 'Down' }[h.status] + (n ? ' · ' + n + ' problem' + (n === 1 ? '' : 's') : '');
    var problems = $('problems');
    clear(problems);
    if (!n) problems.appendChild(el('li', { class: 'none' }, 'No problems: backups are on time and everything answers.'));
    (h.problems || []).forEach(function (p) { problems.appendChild(el('li', null, p)); });

    var dd = $('s-last-backup');
    clear(dd);
    if (h.backups.lastSuccessfulBackup) {
      dd.appendChild(timeEl(h.backups.lastSuccessfulBackup));
      line(dd, ago(h.backups.lastSuccessfulBackupAgeSeconds) + ' · ' + bytes(h.backups.lastBackupSize), h.backups.overdue ? 'bad' : null);
      if (h.backups.overdue) line(dd, 'overdue', 'bad');
    } else dd.textContent = 'none yet';

    dd = $('s-archive');
    clear(dd);
    var w = h.wal;
    if (!w.enabled) dd.textContent = 'off';
    else if (!w.running) { dd.appendChild(el('span', { class: 'bad' }, 'not running')); }
    else {
      dd.appendChild(el('span', { 'data-lag': String(w.lagSeconds) }, 'lag ' + (w.lagSeconds === null ? '—' : w.lagSeconds + ' s')));
      line(dd, 'generation ' + w.generation + ' · ' + w.segments + ' segments · ' + bytes(w.bytes));
    }

    dd = $('s-verification');
    clear(dd);
    var best = null;
    Object.keys(state.details).forEach(function (id) {
      var v = verificationOf(id);
      if (v && (!best || v.verifiedAt > best.v.verifiedAt)) best = { id: id, v: v };
    });
    var archive = null;
    ((state.window && state.window.generations) || []).forEach(function (g) {
      if (g.verification && (!archive || g.verification.at > archive.at)) archive = g.verification;
    });
    if (best) {
      dd.appendChild(el('span', { class: best.v.valid ? 'good' : 'bad' }, 'backup #' + best.id + ' ' + (best.v.valid ? 'valid' : 'invalid') + ' (' + best.v.mode + ')'));
      line(dd, '').appendChild(timeEl(best.v.verifiedAt));
    } else dd.textContent = 'no backup verified yet';
    if (archive) line(dd, 'archive: ' + (archive.ok ? 'valid' : 'broken at ' + (archive.firstBadFile || 'its snapshot')) + ', ' + local(archive.at), archive.ok ? null : 'bad');

    dd = $('s-drill');
    clear(dd);
    var d = h.drills && h.drills.last;
    if (d) {
      dd.appendChild(el('span', { class: d.ok ? 'good' : 'bad' }, d.ok ? 'passed' : 'failed'));
      line(dd, '').appendChild(timeEl(d.at));
      line(dd, 'restore took ' + (d.durationMs / 1000).toFixed(1) + ' s' + (d.reason ? ' · ' + d.reason : ''));
    } else dd.textContent = 'never run';

    dd = $('s-disk');
    clear(dd);
    var enough = h.disk.freeBytes === null || h.disk.neededForNextBackup === null ? null : h.disk.freeBytes >= h.disk.neededForNextBackup;
    dd.appendChild(el('span', { class: enough === false ? 'bad' : 'good' }, bytes(h.disk.freeBytes) + ' free'));
    line(dd, 'the next backup needs ' + bytes(h.disk.neededForNextBackup));

    dd = $('s-mirror');
    clear(dd);
    var m = h.storage && h.storage.mirror;
    if (!m || !m.configured) dd.textContent = 'not configured';
    else {
      dd.appendChild(el('span', { class: m.writable === false || m.outage ? 'bad' : 'good' }, m.writable === null ? 'no answer' : m.writable ? 'reachable' : 'unreachable'));
      line(dd, m.location);
      line(dd, m.copies + ' copies · ' + m.missing + ' missing' + (m.failed.length ? ' · ' + m.failed.length + ' failed' : ''));
      if (m.outage) line(dd, 'failing since ' + local(m.outage.since) + ': ' + m.outage.reason, 'bad');
    }
  }

  // ---- the timeline -------------------------------------------------------------------------
  var W = 1000, H = 120, PAD = 14;
  var view = { start: 0, end: 1 };
  function x(t) { return PAD + ((ms(t) - view.start) / (view.end - view.start)) * (W - 2 * PAD); }
  function tAt(px) { return view.start + ((px - PAD) / (W - 2 * PAD)) * (view.end - view.start); }

  function computeView() {
    var now = Date.now();
    if (state.span !== 'fit') { view = { start: now - Number(state.span), end: now + Number(state.span) * 0.02 }; return; }
    var firsts = [];
    if (state.window && state.window.earliest) firsts.push(ms(state.window.earliest));
    if (state.marks.length) firsts.push(ms(state.marks[state.marks.length - 1].startedAt));
    var start = firsts.length ? Math.min.apply(null, firsts) : now - 3600000;
    var width = Math.max(now - start, 60000);
    view = { start: start - width * 0.03, end: now + width * 0.03 };
  }

  function showTip(html, px, py) {
    var tip = $('tip');
    clear(tip);
    html.forEach(function (row) { tip.appendChild(el('div', null, row)); });
    tip.hidden = false;
    var wrap = tip.parentNode.getBoundingClientRect();
    var left = Math.min(Math.max(px - wrap.left + 12, 4), wrap.width - 290);
    tip.style.left = Math.max(left, 4) + 'px';
    tip.style.top = (py - wrap.top + 14) + 'px';
  }
  function hideTip() { $('tip').hidden = true; }

  function markDetails(b) {
    var v = verificationOf(b.id);
    var d = state.details[b.id];
    return [
      'Backup #' + b.id + ' · ' + b.backupType + (b.backupType === 'pre-migration' ? ' (safety)' : '') + ' · ' + b.status,
      local(b.startedAt) + '  (' + utc(b.startedAt) + ')',
      bytes(b.fileSize) + (d ? ' · ' + d.compression : ''),
      v ? 'last verification: ' + (v.valid ? 'valid' : 'invalid') + ' (' + v.mode + ', ' + local(v.verifiedAt) + ')' : 'never verified'
    ];
  }

  function renderTimeline() {
    var s = $('timeline');
    var box = s.getBoundingClientRect();
    W = Math.max(Math.round(box.width) || 1000, 300);
    s.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    computeView();
    clear(s);
    var defs = svg('defs', {});
    var pattern = svg('pattern', { id: 'gap-hatch', width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' });
    pattern.appendChild(svg('line', { x1: 0, y1: 0, x2: 0, y2: 6, stroke: '#b3261e', 'stroke-width': 1.5 }));
    defs.appendChild(pattern);
    s.appendChild(defs);
    s.appendChild(svg('line', { x1: PAD, x2: W - PAD, y1: 96, y2: 96, stroke: '#d0d4d9' }));
    for (var i = 0; i <= 4; i++) {
      var t = view.start + ((view.end - view.start) * i) / 4;
      var tx = x(t);
      s.appendChild(svg('line', { x1: tx, x2: tx, y1: 93, y2: 99, stroke: '#9aa0a6' }));
      var label = svg('text', { x: tx, y: 112, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle' });
      label.textContent = new Date(t).toLocaleString(undefined, view.end - view.start > 172800000 ? { month: 'short', day: 'numeric', hour: '2-digit' } : { hour: '2-digit', minute: '2-digit', second: view.end - view.start < 7200000 ? '2-digit' : undefined });
      s.appendChild(label);
    }
    var win = state.window || { generations: [], gaps: [] };
    win.gaps.forEach(function (g) {
      var gx = Math.max(x(g.from), PAD), gw = Math.max(x(g.to) - gx, 2);
      var r = svg('rect', { class: 'gap', x: gx, y: 18, width: gw, height: 26, 'data-gap': g.from + '/' + g.to });
      r.addEventListener('mousemove', function (e) { showTip(['Gap: no restore reaches', local(g.from) + ' → ' + local(g.to), g.reason], e.clientX, e.clientY); });
      r.addEventListener('mouseleave', hideTip);
      s.appendChild(r);
    });
    win.generations.forEach(function (g) {
      var gx = Math.max(x(g.start), PAD), gw = Math.max(x(g.end) - gx, 3);
      var broken = g.verification && !g.verification.ok;
      var r = svg('rect', { class: 'gen-bar' + (broken ? ' broken' : ''), x: gx, y: 20, width: gw, height: 22, rx: 2,
        'data-generation-id': g.id, 'data-start': g.start, 'data-end': g.end });
      var info = ['Generation ' + g.id + ' (' + g.reason + ')', local(g.start) + ' → ' + local(g.end), g.segments + ' segments · ' + bytes(g.bytes) + ' · snapshot backup #' + g.snapshotBackupId,
        g.verification ? 'archive verification: ' + (g.verification.ok ? 'valid' : 'broken: ' + (g.verification.reason || '')) : 'archive not verified yet'];
      if (!READ_ONLY) info.push('click to pick a moment to restore to');
      r.addEventListener('mousemove', function (e) { showTip(info, e.clientX, e.clientY); });
      r.addEventListener('mouseleave', hideTip);
      if (!READ_ONLY) r.addEventListener('click', function (e) {
        var rect = s.getBoundingClientRect();
        var t = tAt(((e.clientX - rect.left) / rect.width) * W);
        var lo = Math.ceil(ms(g.start) / 1000) * 1000, hi = Math.floor(ms(g.end) / 1000) * 1000;
        setPick(Math.min(Math.max(Math.round(t / 1000) * 1000, lo), Math.max(hi, lo)));
      });
      s.appendChild(r);
    });
    state.marks.forEach(function (b) {
      var mx = x(b.startedAt);
      if (mx < PAD - 1) return;
      var cls = 'mark ' + verificationClass(b) + (b.backupType === 'pre-migration' ? ' safety' : '');
      var shape = b.backupType === 'pre-migration'
        ? svg('polygon', { points: [mx, 54, mx + 7, 62, mx, 70, mx - 7, 62].join(' ') })
        : svg('circle', { cx: mx, cy: 62, r: 6 });
      shape.setAttribute('class', cls);
      shape.setAttribute('tabindex', '0');
      shape.setAttribute('role', 'button');
      shape.setAttribute('data-mark-id', b.id);
      shape.setAttribute('data-verification', verificationClass(b));
      shape.setAttribute('aria-label', markDetails(b).join('; '));
      shape.addEventListener('mousemove', function (e) { showTip(markDetails(b), e.clientX, e.clientY); });
      shape.addEventListener('mouseleave', hideTip);
      shape.addEventListener('focus', function () { var r = shape.getBoundingClientRect(); showTip(markDetails(b), r.left, r.bottom); });
      shape.addEventListener('blur', hideTip);
      if (!READ_ONLY && b.status === 'completed') {
        shape.addEventListener('click', function () { restoreBackup(b); });
        shape.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); restoreBackup(b); } });
      }
      s.appendChild(shape);
    });
    var nx = x(Date.now());
    s.appendChild(svg('line', { class: 'now', x1: nx, x2: nx, y1: 6, y2: 96, 'data-now': new Date().toISOString() }));
    var nowLabel = svg('text', { x: nx - 3, y: 12, 'text-anchor': 'end' });
    nowLabel.textContent = 'now';
    s.appendChild(nowLabel);
    if (state.pick !== null) {
      var px = x(state.pick);
      s.appendChild(svg('line', { class: 'pick', x1: px, x2: px, y1: 14, y2: 50, 'data-pick': new Date(state.pick).toISOString() }));
    }
    var summary = $('window-summary');
    if (!state.window || !state.window.enabled) summary.textContent = 'WAL archiving is off: a restore goes back to a backup, not to any moment.';
    else if (!state.window.earliest) summary.textContent = 'WAL archiving is on; the window opens once the first snapshot is archived.';
    else summary.textContent = 'Any moment from ' + local(state.window.earliest) + ' to ' + local(state.window.latest) + ' can be restored to' +
      (state.window.gaps.length ? ', except ' + state.window.gaps.length + ' gap' + (state.window.gaps.length === 1 ? '' : 's') : '') + '.';
    // How far a restore from the mirror alone reaches (null without a mirror or with archiving off).
    var off = $('window-offsite');
    var o = state.window && state.window.offsite;
    off.hidden = !o;
    if (o) {
      var unsent = o.unmirroredSegments ? ', ' + o.unmirroredSegments + ' segment' + (o.unmirroredSegments === 1 ? '' : 's') + ' not copied yet' : '';
      off.textContent = o.latest === null ? 'Off-site: a restore from the mirror alone reaches no moment of the window yet' + unsent + '.'
        : 'Off-site: a restore from the mirror alone reaches ' + local(o.latest) + ' (lag ' + o.lagSeconds + ' s' + unsent + ').';
      off.className = 'hint' + (o.lagSeconds === null || o.lagSeconds > o.threshold ? ' bad' : '');
      off.setAttribute('data-lag', String(o.lagSeconds));
    }
  }

  function setPick(t) {
    state.pick = t;
    var input = $('restore-at');
    if (input) {
      input.value = inputValue(t);
      input.setAttribute('data-iso', new Date(t).toISOString());
      $('restore-at-utc').textContent = utc(t);
    }
    renderTimeline();
  }

  // ---- the backups table --------------------------------------------------------------------
  function query(params) {
    var q = Object.keys(params).filter(function (k) { return params[k] !== null && params[k] !== undefined && params[k] !== ''; })
      .map(function (k) { return k + '=' + encodeURIComponent(params[k]); });
    return q.length ? '?' + q.join('&') : '';
  }

  /** One page of the table: the API's cursor; a type filter walks further pages until the table is full. */
  function loadTable() {
    var type = $('f-type').value, status = $('f-status').value;
    var rows = [], cursor = state.table.cursor, total = 0, rounds = 0;
    function step() {
      return api('/backups' + query({ limit: type ? 200 : PAGE, status: status, cursor: cursor })).then(function (page) {
        total = page.total;
        var next = null;
        for (var i = 0; i < page.backups.length; i++) {
          var b = page.backups[i];
          if (type && b.backupType !== type) continue;
          rows.push(b);
          if (rows.length === PAGE) { next = (i < page.backups.length - 1 || page.nextCursor) ? b.id : null; break; }
        }
        if (rows.length < PAGE && page.nextCursor && type && ++rounds < 20) { cursor = page.nextCursor; return step(); }
        if (rows.length < PAGE) next = type && page.nextCursor ? page.nextCursor : null;
        if (!type) next = page.nextCursor;
        return next;
      });
    }
    return step().then(function (next) {
      state.table.rows = rows;
      state.table.next = next;
      $('b-total').textContent = total + ' backup' + (total === 1 ? '' : 's') + ' in the catalog';
      return loadDetails(rows.map(function (b) { return b.id; }), POLL_MS);
    }).then(renderTable);
  }

  function renderTable() {
    var tbody = $('backups-body');
    clear(tbody);
    var m = state.health && state.health.storage && state.health.storage.mirror;
    state.table.rows.forEach(function (b) {
      var d = state.details[b.id];
      var v = verificationOf(b.id);
      var tr = el('tr', { 'data-backup-id': b.id, 'data-status': b.status, 'data-type': b.backupType });
      tr.appendChild(el('td', { class: 'num', 'data-label': 'ID' }, String(b.id)));
      tr.appendChild(el('td', { 'data-label': 'Type' }, b.backupType + (b.backupType === 'pre-migration' ? ' (safety)' : '') + (b.status !== 'completed' ? ' · ' + b.status.replace('_', ' ') : '')));
      var td = el('td', { 'data-label': 'Time' });
      td.appendChild(timeEl(b.startedAt));
      tr.appendChild(td);
      tr.appendChild(el('td', { class: 'num', 'data-label': 'Size' }, bytes(b.fileSize)));
      tr.appendChild(el('td', { 'data-label': 'Encoding' }, d ? d.compression : '…'));
      var vtd = el('td', { 'data-label': 'Verification', 'data-verification': verificationClass(b) });
      if (v) {
        vtd.appendChild(el('span', { class: v.valid ? 'good' : 'bad', title: v.message }, (v.valid ? 'valid' : 'invalid') + ' (' + v.mode + ') '));
        vtd.appendChild(timeEl(v.verifiedAt));
      } else vtd.textContent = b.status === 'completed' ? 'never' : '—';
      tr.appendChild(vtd);
      var mirror = '—', title = 'no mirror configured';
      if (m && m.configured) {
        var failed = m.failed.filter(function (f) { return f.backupId === b.id; })[0];
        if (failed) { mirror = 'failed'; title = failed.error || ''; }
        else if (m.missing === 0 && b.status === 'completed') { mirror = 'copied'; title = m.location; }
        else { mirror = b.status === 'completed' ? 'copied or pending' : '—'; title = m.missing + ' backups are not copied yet'; }
      } else mirror = 'no mirror';
      tr.appendChild(el('td', { title: title, 'data-label': 'Mirror copy' }, mirror));
      if (!READ_ONLY) {
        var atd = el('td', { 'data-label': 'Actions' });
        var actions = el('div', { class: 'actions' });
        if (b.status === 'completed') {
          var verify = el('button', { type: 'button', 'data-action': 'verify', 'aria-label': 'Verify backup ' + b.id }, 'Verify');
          verify.addEventListener('click', function () { verifyBackup(b); });
          var restore = el('button', { type: 'button', class: 'danger', 'data-action': 'restore', 'aria-label': 'Restore backup ' + b.id }, 'Restore…');
          restore.addEventListener('click', function () { restoreBackup(b); });
          actions.appendChild(verify);
          actions.appendChild(restore);
        }
        atd.appendChild(actions);
        tr.appendChild(atd);
      }
      tbody.appendChild(tr);
    });
    if (!state.table.rows.length) tbody.appendChild(el('tr', null)).appendChild(el('td', { colspan: READ_ONLY ? 7 : 8 }, 'No backups match.'));
    $('page-older').disabled = !state.table.next;
    $('page-newer').disabled = !state.table.history.length;
    $('page-info').textContent = 'page ' + (state.table.history.length + 1);
  }

  /**
   * The detail of each backup (its encoding and last verification), which the list does not carry;
   * read again once older than maxAgeMs, so the timeline's hundreds of marks are not all re-read on every poll.
   */
  var fetchedAt = {};
  function loadDetails(ids, maxAgeMs) {
    var now = Date.now();
    var todo = ids.filter(function (id) {
      var d = state.details[id];
      return !d || d.status === 'in_progress' || !(now - fetchedAt[id] < maxAgeMs);
    });
    var i = 0;
    function worker() {
      if (i >= todo.length) return Promise.resolve();
      var id = todo[i++];
      return api('/backups/' + id).then(function (r) { state.details[id] = r.backup; fetchedAt[id] = Date.now(); }, function () { /* deleted meanwhile */ }).then(worker);
    }
    return Promise.all([worker(), worker(), worker(), worker(), worker(), worker()]);
  }

  /** The backups the timeline shows: newest first, back to the start of the span or MARK_LIMIT. */
  function loadMarks() {
    var since = state.span === 'fit' ? Date.now() - 7 * 86400000 : Date.now() - Number(state.span);
    if (state.window && state.window.earliest) since = Math.min(since, ms(state.window.earliest));
    var marks = [];
    function step(cursor) {
      return api('/backups' + query({ limit: 200, cursor: cursor })).then(function (page) {
        var done = false;
        page.backups.forEach(function (b) {
          if (ms(b.startedAt) < since) done = true;
          else if (marks.length < MARK_LIMIT) marks.push(b);
        });
        if (!done && page.nextCursor && marks.length < MARK_LIMIT) return step(page.nextCursor);
      });
    }
    return step(null).then(function () {
      state.marks = marks;
      return loadDetails(marks.map(function (b) { return b.id; }), 60000);
    });
  }

  // ---- actions and their jobs ---------------------------------------------------------------
  function note(text, cls) {
    var li = el('li', cls ? { class: cls } : null, text);
    $('job-list').prepend(li);
    return li;
  }

  function track(label, answer, onEnd) {
    var li = note(label + ': queued', null);
    li.setAttribute('data-job-id', answer.jobId);
    li.setAttribute('data-job-state', 'queued');
    var bar = el('progress', { max: 100 });
    function poll() {
      api('/jobs/' + encodeURIComponent(answer.jobId)).then(function (r) {
        var job = r.job;
        li.setAttribute('data-job-state', job.state);
        clear(li);
        li.appendChild(document.createTextNode(label + ': ' + job.state.replace('-', ' ') + ' '));
        if ((job.state === 'completed' || job.state === 'failed') && onEnd) onEnd();
        if (job.state === 'completed') {
          li.className = 'good';
          li.appendChild(document.createTextNode(describeResult(job.result)));
          return refreshAll().then(loadTable);
        }
        if (job.state === 'failed') {
          li.className = 'bad';
          li.appendChild(document.createTextNode(job.error || ''));
          return refreshAll().then(loadTable);
        }
        if (typeof job.progress === 'number') { bar.value = job.progress; li.appendChild(bar); }
        else if (job.progress && typeof job.progress === 'object' && job.progress.stage) li.appendChild(document.createTextNode('(' + job.progress.stage + ')'));
        setTimeout(poll, 500);
      }, function (err) {
        li.className = 'bad';
        li.textContent = label + ': ' + err.message;
      });
    }
    poll();
  }

  function describeResult(r) {
    if (!r || typeof r !== 'object') return '';
    if (r.valid !== undefined) return r.valid ? 'valid' : 'invalid: ' + (r.message || '');
    var safety = r.safetyBackupId ? ' (safety backup #' + r.safetyBackupId + ')' : '';
    if (r.wal && r.wal.restoredTo) return 'restored to ' + local(r.wal.restoredTo) + safety;
    if (r.safetyBackupId !== undefined) return 'restored backup #' + r.backupId + safety;
    if (r.fileName !== undefined) return 'backup #' + r.id + ', ' + bytes(r.fileSize);
    return '';
  }

  function failed(label) { return function (err) { note(label + ' refused: ' + err.message, 'bad'); }; }

  function backupNow() {
    api('/backups', { method: 'POST', body: {}, async: true }).then(function (a) { track('Backup' + (a.joined ? ' (joined the one queued)' : ''), a); }, failed('Backup'));
  }

  function verifyBackup(b) {
    api('/backups/' + b.id + '/verify', { method: 'POST', body: { mode: 'full' }, async: true }).then(function (a) {
      delete state.details[b.id];
      track('Verify backup #' + b.id, a, function () { delete state.details[b.id]; });
    }, failed('Verify backup #' + b.id));
  }

  function confirmAction(title, text, okLabel) {
    var dialog = $('confirm');
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = okLabel;
    dialog.returnValue = '';
    return new Promise(function (resolve) {
      dialog.addEventListener('close', function onClose() {
        dialog.removeEventListener('close', onClose);
        resolve(dialog.returnValue === 'ok');
      });
      dialog.showModal();
    });
  }

  function dbLine() {
    var h = state.health;
    return h && h.database && h.database.sizeBytes !== null ? ' (now ' + bytes(h.database.sizeBytes) + ')' : '';
  }

  function restoreBackup(b) {
    var when = local(b.startedAt);
    confirmAction('Restore backup #' + b.id + '?',
      'The live database' + dbLine() + ' will be replaced by backup #' + b.id + ', taken ' + when + ' (' + utc(b.startedAt) + '). ' +
      'Everything written to it since then is replaced.', 'Restore backup #' + b.id).then(function (ok) {
      if (!ok) return;
      api('/backups/' + b.id + '/restore', { method: 'POST', body: {}, async: true }).then(function (a) { track('Restore of backup #' + b.id, a); }, failed('Restore'));
    });
  }

  function restoreTo(target) {
    var text = target === 'latest' || target === 'latest-valid'
      ? 'The live database' + dbLine() + ' will be replaced by ' + (target === 'latest' ? 'its last archived commit (the WAL archive).' : 'the newest backup that passes a full verification.')
      : 'The live database' + dbLine() + ' will be replaced by its state as of ' + local(target) + ' (' + utc(target) + '). Everything written after that moment is replaced.';
    var title = target === 'latest' || target === 'latest-valid' ? 'Restore to ' + target + '?' : 'Restore to ' + local(target) + '?';
    confirmAction(title, text, 'Restore').then(function (ok) {
      if (!ok) return;
      var to = typeof target === 'number' ? new Date(target).toISOString() : target;
      api('/restores', { method: 'POST', body: { to: to }, async: true }).then(function (a) {
        track('Restore to ' + (typeof target === 'number' ? local(target) : target), a);
      }, failed('Restore'));
    });
  }

  // ---- polling and wiring -------------------------------------------------------------------
  function refreshAll() {
    return Promise.all([
      api('/health', { allow: [503] }).then(function (h) { state.health = h; }),
      api('/recovery-window').then(function (w) { state.window = w; })
    ]).then(loadMarks).then(function () {
      renderState();
      renderTimeline();
      $('updated').textContent = new Date().toLocaleTimeString();
      $('updated').setAttribute('title', utc(Date.now()));
    });
  }

  var timer = null;
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      refreshAll().then(function () { return loadTable(); }).catch(function (err) { $('updated').textContent = 'failed: ' + err.message; }).then(schedule);
    }, POLL_MS);
  }

  function wire() {
    var now = $('backup-now');
    if (now) now.addEventListener('click', backupNow);
    var form = $('restore-to-form');
    if (form) {
      form.addEventListener('submit', function (e) {
        e.preventDefault();
        var input = $('restore-at');
        var t = new Date(input.value).getTime();
        if (isNaN(t)) { note('Type a moment to restore to first', 'bad'); return; }
        if (Math.abs(t - (state.pick || 0)) >= 1000) setPick(t);
        restoreTo(state.pick);
      });
      $('restore-at').addEventListener('change', function (e) {
        var t = new Date(e.target.value).getTime();
        if (!isNaN(t)) setPick(t);
      });
      $('restore-latest').addEventListener('click', function () { restoreTo(state.window && state.window.enabled ? 'latest' : 'latest-valid'); });
    }
    $('timeline').addEventListener('keydown', function (e) {
      if (READ_ONLY || e.target !== $('timeline')) return;
      var win = state.window;
      if (!win || !win.latest) return;
      var stepMs = Math.max(1000, (view.end - view.start) / (e.shiftKey ? 10 : 100));
      var t = state.pick === null ? ms(win.latest) : state.pick;
      var lo = Math.ceil(ms(win.earliest) / 1000) * 1000, hi = Math.floor(ms(win.latest) / 1000) * 1000;
      // Whole seconds, rounded away from where the pick was, so that each key press moves it.
      if (e.key === 'ArrowLeft') t = Math.floor((t - stepMs) / 1000) * 1000;
      else if (e.key === 'ArrowRight') t = Math.ceil((t + stepMs) / 1000) * 1000;
      else if (e.key === 'Home') t = lo;
      else if (e.key === 'End') t = hi;
      else return;
      e.preventDefault();
      setPick(Math.min(Math.max(t, lo), Math.max(hi, lo)));
    });
    $('span').addEventListener('change', function (e) { state.span = e.target.value; refreshAll(); });
    function refilter() { state.table.cursor = null; state.table.history = []; loadTable().catch(failed('Loading backups')); }
    $('f-type').addEventListener('change', refilter);
    $('f-status').addEventListener('change', refilter);
    $('page-older').addEventListener('click', function () {
      if (!state.table.next) return;
      state.table.history.push(state.table.cursor);
      state.table.cursor = state.table.next;
      loadTable().catch(failed('Loading backups'));
    });
    $('page-newer').addEventListener('click', function () {
      if (!state.table.history.length) return;
      state.table.cursor = state.table.history.pop();
      loadTable().catch(failed('Loading backups'));
    });
    window.addEventListener('resize', function () { renderTimeline(); });
    document.addEventListener('keydown', function (e) { if (e.key === 'Escape') hideTip(); });
  }

  wire();
  refreshAll().then(loadTable).catch(function (err) { $('updated').textContent = 'failed: ' + err.message; }).then(schedule);
})();
`;
