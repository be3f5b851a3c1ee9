"""The style and script of ``index.html`` (inlined; the page loads nothing else).

The script reads the JSON embedded in ``<script id="inspect-data">`` and renders one page
of documents at a time with ``createElement``/``textContent`` only (no ``innerHTML``), so
no text from the data is ever parsed as HTML. The URL hash (or query string) presets the
controls and follows them: ``index.html#q=heart&status=dropped&reason=dedup:near_duplicate&page=2``.
"""

from __future__ import annotations

from inpars.evaluation.report_html import BASE_STYLE

STYLE = BASE_STYLE + """div.summary { display: flex; flex-wrap: wrap; gap: 0 2em; }
div.summary section { max-width: 560px; }
div.summary h3 { margin: 0.8em 0 0.2em; font-size: 1em; }
#controls { position: sticky; top: 0; background: #fff; padding: 0.6em 0; border-bottom: 1px solid #ddd; }
#controls input[type=search] { width: 22em; }
#info { color: #555; margin: 0.5em 0; }
article.doc { border: 1px solid #ddd; border-radius: 4px; padding: 0.5em 0.8em; margin: 0.6em 0; }
article.doc h3 { margin: 0.1em 0; font-size: 1em; }
article.doc .doc-id { color: #777; font-weight: normal; margin-right: 0.5em; }
article.doc p.snippet { color: #444; font-size: 0.85em; margin: 0.3em 0; }
ul.queries { list-style: none; padding: 0; margin: 0.3em 0; }
li.query { padding: 0.2em 0.4em; border-left: 4px solid #2a2; margin: 0.15em 0; }
li.query.dropped { border-left-color: #c33; background: #fcf4f4; }
li.query .meta { color: #666; font-size: 0.8em; margin-left: 0.6em; }
li.query .reason { color: #a22; }
li.query .detail { display: block; color: #888; font-size: 0.8em; }
.pager button { margin: 0 0.3em; }
"""

SCRIPT = r"""
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("inspect-data").textContent);
  var PAGE_SIZE = DATA.page_size || 25;
  var docs = DATA.docs;
  docs.forEach(function (d) {
    d._s = (d.id + " " + d.title + " " + d.text).toLowerCase();
    d.q.forEach(function (q) { q._s = q.t.toLowerCase(); });
  });
  function byId(id) { return document.getElementById(id); }
  var search = byId("search"), status = byId("status"), reason = byId("reason");
  var list = byId("entries"), info = byId("info"), prev = byId("prev"), next = byId("next");
  var page = 0, timer = null;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  DATA.reasons.forEach(function (r) {
    var o = el("option", "", r.name + " (" + r.count + ")");
    o.value = r.name;
    reason.appendChild(o);
  });
  function choose(select, value) {
    select.value = "";
    for (var i = 0; i < select.options.length; i++) {
      if (select.options[i].value === value) { select.value = value; }
    }
  }
  function readLocation() {
    var raw = location.hash.replace(/^#/, "") || location.search.replace(/^\?/, "");
    var p = new URLSearchParams(raw);
    search.value = p.get("q") || "";
    choose(status, p.get("status") || "");
    choose(reason, p.get("reason") || "");
    page = Math.max(0, (parseInt(p.get("page"), 10) || 1) - 1);
  }
  function writeLocation() {
    var p = new URLSearchParams();
    if (search.value) { p.set("q", search.value); }
    if (status.value) { p.set("status", status.value); }
    if (reason.value) { p.set("reason", reason.value); }
    if (page > 0) { p.set("page", String(page + 1)); }
    try { history.replaceState(null, "", "#" + p.toString()); } catch (e) { /* file:// may refuse */ }
  }
  function filtered() {
    var needle = search.value.trim().toLowerCase(), st = status.value, rs = reason.value;
    var out = [];
    docs.forEach(function (d) {
      var docHit = !needle || d._s.indexOf(needle) >= 0;
      var qs = d.q.filter(function (q) {
        return (!st || q.s === st) && (!rs || q.r === rs) && (docHit || q._s.indexOf(needle) >= 0);
      });
      if (qs.length || (!st && !rs && docHit)) { out.push([d, qs]); }
    });
    return out;
  }
  function renderQuery(q) {
    var li = el("li", "query " + q.s);
    li.appendChild(el("span", "text", q.t));
    var meta = el("span", "meta", q.s + " · log-prob " + (q.lp === null ? "-" : q.lp.toFixed(3)));
    li.appendChild(meta);
    if (q.r) { li.appendChild(el("span", "meta reason", q.r)); }
    if (q.d) { li.appendChild(el("span", "detail", q.d)); }
    return li;
  }
  function renderDoc(d, qs) {
    var art = el("article", "doc");
    art.setAttribute("data-doc-id", d.id);
    var h = el("h3");
    h.appendChild(el("span", "doc-id", d.id));
    h.appendChild(el("span", "title", d.title || "(no title)"));
    art.appendChild(h);
    art.appendChild(el("p", "snippet", d.text));
    var ul = el("ul", "queries");
    qs.forEach(function (q) { ul.appendChild(renderQuery(q)); });
    if (!d.q.length) { ul.appendChild(el("li", "query none", "no query was generated")); }
    art.appendChild(ul);
    return art;
  }
  function render() {
    var shown = filtered();
    var pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
    page = Math.min(page, pages - 1);
    var queries = shown.reduce(function (n, e) { return n + e[1].length; }, 0);
    var frag = document.createDocumentFragment();
    shown.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE).forEach(function (e) {
      frag.appendChild(renderDoc(e[0], e[1]));
    });
    while (list.firstChild) { list.removeChild(list.firstChild); }
    list.appendChild(frag);
    info.textContent = shown.length + " documents, " + queries + " queries match (page " + (page + 1) +
      " of " + pages + ")";
    info.setAttribute("data-documents", String(shown.length));
    info.setAttribute("data-queries", String(queries));
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
  }
  function changed() { page = 0; writeLocation(); render(); }
  search.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(changed, 150); });
  status.addEventListener("change", changed);
  reason.addEventListener("change", changed);
  function turn(step) { page += step; writeLocation(); render(); window.scrollTo(0, 0); }
  prev.addEventListener("click", function () { turn(-1); });
  next.addEventListener("click", function () { turn(1); });
  window.addEventListener("hashchange", function () { readLocation(); render(); });
  readLocation();
  render();
})();
"""
