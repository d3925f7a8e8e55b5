"""The per-sample browser's script and style (``browser/browser.js``, ``browser/browser.css``).

The script reads ``window.CLIPBENCH_BROWSER`` (written by ``clipbench.results.report.browser``) and sets
every name through ``textContent``, so a class name from a hostile dataset stays text. Element ids the
tests drive: ``matrix`` (cells ``cell-<true>-<predicted>``), ``filter-class``, ``filter-correct``,
``filter-agree``, ``clear``, ``prev``, ``next``, ``count``, ``page``, ``samples`` (rows ``data-index``),
``errors``; the outcomes page: ``filter-subset``, ``filter-outcome``; the targets page: ``filter-group-<j>``
(one per group variable), ``filter-correct``.
"""

STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:.6em 0}th,td{border:1px solid #ccc;padding:3px 6px}
th{background:#f3f3f3}td.n{text-align:right}#matrix td{width:18px;height:18px;padding:0;cursor:pointer;
text-align:center;font-size:10px}#matrix td.sel{outline:2px solid #000}#matrix th{font-size:10px;max-width:7em;
overflow:hidden;white-space:nowrap}.controls{margin:.6em 0}.controls>*{margin-right:.8em}
img.thumb{width:48px;height:48px;object-fit:contain;background:#eee}.right{color:#1a7f37}.wrong{color:#b3261e}
section{margin-bottom:2em}
"""

SCRIPT = r"""(function () {
  "use strict";
  const D = window.CLIPBENCH_BROWSER;
  const app = document.getElementById("app");
  const N = D.index ? D.index.length : 0;
  const state = { cls: -1, pred: -1, correct: "all", agree: "all", page: 0 };

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function name(c) { return D.classnames[c] !== undefined ? D.classnames[c] : String(c); }
  function thumb(i) {
    const src = D.thumbs[String(D.index[i])];
    return src ? el("img", { src: src, class: "thumb", alt: "sample " + D.index[i] }) : el("span", {}, "–");
  }
  function row(i, cells) {
    const tr = el("tr", { "data-index": String(D.index[i]) });
    const t = el("td"); t.appendChild(thumb(i)); tr.appendChild(t);
    for (const [text, cls] of cells) tr.appendChild(el("td", cls ? { class: cls } : {}, text));
    return tr;
  }
  function correctSelect() {
    const s = el("select", { id: "filter-correct" });
    for (const [v, t] of [["all", "right and wrong"], ["right", "right only"], ["wrong", "wrong only"]]) s.appendChild(el("option", { value: v }, t));
    return s;
  }
  function listView(ctl, heads, unit, rowsOf, rowOf) {
    // a paged table (#samples) of rowsOf()'s rows, D.page_size a page, after ctl; returns "draw from page 1"
    const prev = el("button", { id: "prev" }, "previous"), next = el("button", { id: "next" }, "next");
    const count = el("span", { id: "count" }), page = el("span", { id: "page" });
    ctl.append(prev, page, next, count);
    const st = el("table", { id: "samples" });
    app.append(ctl, st);
    let p = 0;
    function draw() {
      const rows = rowsOf();
      const pages = Math.max(1, Math.ceil(rows.length / D.page_size));
      p = Math.min(p, pages - 1);
      count.textContent = rows.length + " " + unit; page.textContent = " page " + (p + 1) + " of " + pages + " ";
      prev.disabled = p === 0; next.disabled = p >= pages - 1;
      st.textContent = "";
      const h = el("tr"); for (const t of heads) h.appendChild(el("th", {}, t));
      st.appendChild(h);
      for (const i of rows.slice(p * D.page_size, (p + 1) * D.page_size)) st.appendChild(rowOf(i));
    }
    prev.addEventListener("click", () => { p -= 1; draw(); });
    next.addEventListener("click", () => { p += 1; draw(); });
    return () => { p = 0; draw(); };
  }
  function sampleCells(i) {
    const cells = [[String(D.index[i]), "n"], [name(D.label[i])], [name(D.pred[i])],
                   [D.confidence[i].toFixed(3), "n"], [D.correct[i] ? "right" : "wrong", D.correct[i] ? "right" : "wrong"]];
    if (D.other) cells.push([D.other.correct[i] ? "right" : "wrong", D.other.correct[i] ? "right" : "wrong"]);
    return cells;
  }

  app.textContent = "";
  app.appendChild(el("h1", {}, D.title));
  if (D.kind === "retrieval") { retrieval(); return; }
  if (D.kind === "outcomes") { outcomes(); return; }
  if (D.kind === "targets") { targets(); return; }
  const right = D.correct.reduce((a, b) => a + b, 0);
  app.appendChild(el("p", {}, N + " samples, " + right + " right at top-1 (" + (100 * right / Math.max(N, 1)).toFixed(2) + "%)."));

  // most confident errors
  const errs = el("section"); errs.appendChild(el("h2", {}, "Most confident errors"));
  const et = el("table", { id: "errors" });
  const eh = el("tr"); for (const h of ["image", "index", "label", "predicted", "confidence"]) eh.appendChild(el("th", {}, h));
  et.appendChild(eh);
  const pos = new Map(D.index.map((v, i) => [v, i]));
  for (const e of D.errors) {
    const i = pos.get(e.index);
    et.appendChild(row(i, [[String(e.index), "n"], [name(e.label)], [name(e.predicted)], [e.confidence.toFixed(3), "n"]]));
  }
  errs.appendChild(et); app.appendChild(errs);

  // confusion matrix
  const ms = el("section"); ms.appendChild(el("h2", {}, "Confusion matrix"));
  ms.appendChild(el("p", {}, (D.matrix.all ? "All classes" : "The " + D.matrix.classes.length + " classes with the most errors") +
    "; rows: true class, columns: predicted class. Click a cell to list its samples."));
  const mt = el("table", { id: "matrix" });
  const head = el("tr"); head.appendChild(el("th", {}, "true \\ predicted"));
  for (const c of D.matrix.classes) head.appendChild(el("th", { title: name(c) }, name(c)));
  mt.appendChild(head);
  let max = 1; for (const r of D.matrix.counts) for (const v of r) max = Math.max(max, v);
  D.matrix.classes.forEach((t, a) => {
    const tr = el("tr"); tr.appendChild(el("th", { title: name(t) }, name(t)));
    D.matrix.classes.forEach((p, b) => {
      const v = D.matrix.counts[a][b];
      const shade = v ? 0.12 + 0.88 * v / max : 0;
      const td = el("td", { id: "cell-" + t + "-" + p, "data-count": String(v), title: name(t) + " → " + name(p) + ": " + v },
                    v ? String(v) : "");
      td.style.background = a === b ? "rgba(31,119,180," + shade + ")" : "rgba(214,39,40," + shade + ")";
      td.addEventListener("click", () => { state.cls = t; state.pred = p; state.correct = "all"; state.page = 0; sync(); render();
                                             document.getElementById("list").scrollIntoView(); });
      tr.appendChild(td);
    });
    mt.appendChild(tr);
  });
  ms.appendChild(mt); app.appendChild(ms);

  // the sample list with its filters
  const ls = el("section", { id: "list" }); ls.appendChild(el("h2", {}, "Samples"));
  const ctl = el("div", { class: "controls" });
  const fc = el("select", { id: "filter-class" }); fc.appendChild(el("option", { value: "-1" }, "every class"));
  D.classnames.forEach((n, c) => fc.appendChild(el("option", { value: String(c) }, n)));
  const fr = correctSelect();
  const predNote = el("span", { id: "filter-pred" });
  const clear = el("button", { id: "clear" }, "clear filters");
  ctl.append(el("label", {}, "true class "), fc, el("label", {}, " correct "), fr, predNote);
  let fa = null;
  if (D.other) {
    fa = el("select", { id: "filter-agree" });
    for (const [v, t] of [["all", "every sample"], ["discordant", "the runs disagree (" + (D.other.b + D.other.c) + ")"],
                          ["b", "right before, wrong now (" + D.other.b + ")"], ["c", "wrong before, right now (" + D.other.c + ")"]])
      fa.appendChild(el("option", { value: v }, t));
    ctl.append(el("label", {}, " against the earlier run (" + (D.other.timestamp || "") + ") "), fa);
  }
  ctl.appendChild(clear);
  const nav = el("div", { class: "controls" });
  const prev = el("button", { id: "prev" }, "previous"), next = el("button", { id: "next" }, "next");
  const count = el("span", { id: "count" }), page = el("span", { id: "page" });
  nav.append(prev, page, next, count);
  const st = el("table", { id: "samples" });
  ls.append(ctl, nav, st); app.appendChild(ls);

  function selected() {
    const out = [];
    for (let i = 0; i < N; i++) {
      if (state.cls >= 0 && D.label[i] !== state.cls) continue;
      if (state.pred >= 0 && D.pred[i] !== state.pred) continue;
      if (state.correct === "right" && !D.correct[i]) continue;
      if (state.correct === "wrong" && D.correct[i]) continue;
      if (D.other && state.agree !== "all") {
        const before = D.other.correct[i], now = D.correct[i];
        if (state.agree === "discordant" && before === now) continue;
        if (state.agree === "b" && !(before && !now)) continue;
        if (state.agree === "c" && !(!before && now)) continue;
      }
      out.push(i);
    }
    return out;
  }
  function sync() {
    fc.value = String(state.cls); fr.value = state.correct; if (fa) fa.value = state.agree;
    predNote.textContent = state.pred >= 0 ? " predicted: " + name(state.pred) + " " : "";
    document.querySelectorAll("#matrix td.sel").forEach(td => td.classList.remove("sel"));
    const cell = document.getElementById("cell-" + state.cls + "-" + state.pred);
    if (cell) cell.classList.add("sel");
  }
  function render() {
    const rows = selected();
    const pages = Math.max(1, Math.ceil(rows.length / D.page_size));
    state.page = Math.min(state.page, pages - 1);
    count.textContent = rows.length + " samples";
    page.textContent = " page " + (state.page + 1) + " of " + pages + " ";
    prev.disabled = state.page === 0; next.disabled = state.page >= pages - 1;
    st.textContent = "";
    const h = el("tr");
    for (const t of ["image", "index", "label", "predicted", "confidence", "this run"].concat(D.other ? ["earlier run"] : []))
      h.appendChild(el("th", {}, t));
    st.appendChild(h);
    for (const i of rows.slice(state.page * D.page_size, (state.page + 1) * D.page_size)) st.appendChild(row(i, sampleCells(i)));
  }
  fc.addEventListener("change", () => { state.cls = Number(fc.value); state.page = 0; sync(); render(); });
  fr.addEventListener("change", () => { state.correct = fr.value; state.page = 0; sync(); render(); });
  if (fa) fa.addEventListener("change", () => { state.agree = fa.value; state.page = 0; sync(); render(); });
  clear.addEventListener("click", () => { Object.assign(state, { cls: -1, pred: -1, correct: "all", agree: "all", page: 0 }); sync(); render(); });
  prev.addEventListener("click", () => { state.page -= 1; render(); });
  next.addEventListener("click", () => { state.page += 1; render(); });
  sync(); render();

  function retrieval() {
    // every caption with its image's rank (text -> image), worst first; "missed at k": rank > k
    const order = D.rank.map((r, i) => i).sort((a, b) => D.rank[b] - D.rank[a] || a - b);
    const at1 = D.rank.filter(r => r === 1).length;
    app.appendChild(el("p", {}, D.rank.length + " captions of " + D.image_rank.length + " images; " + at1 +
      " captions find their image first. Rank: where the caption's image comes among all images (1 = first)."));
    const ctl = el("div", { class: "controls" });
    const fm = el("select", { id: "filter-miss" }); fm.appendChild(el("option", { value: "0" }, "every caption"));
    for (const k of D.ks) fm.appendChild(el("option", { value: String(k) }, "image not in the top " + k));
    ctl.append(el("label", {}, "show "), fm);
    let k = 0;
    const draw = listView(ctl, ["image", "caption", "rank of its image", "image's best caption rank"], "captions",
                          () => order.filter(i => D.rank[i] > k), i => {
      const tr = el("tr", { "data-index": String(i) }), td = el("td"), src = D.thumbs[String(D.image[i])];
      td.appendChild(src ? el("img", { src: src, class: "thumb", alt: "image " + D.image[i] }) : el("span", {}, "image " + D.image[i]));
      tr.append(td, el("td", {}, D.captions[i]), el("td", { class: "n" }, String(D.rank[i])),
                el("td", { class: "n" }, String(D.image_rank[D.image[i]])));
      return tr;
    });
    fm.addEventListener("change", () => { k = Number(fm.value); draw(); });
    draw();
  }

  function outcomes() {
    // every item worst first (D.order), filtered by subset and by a right/wrong column (D.flags)
    app.appendChild(el("p", {}, D.summary + (D.sort ? ". Lowest " + D.sort + " first." : ".")));
    const ctl = el("div", { class: "controls" });
    const fs = el("select", { id: "filter-subset" }); fs.appendChild(el("option", { value: "-1" }, "every subset"));
    (D.subsets || []).forEach((s, j) => fs.appendChild(el("option", { value: String(j) }, s)));
    if (D.subsets) ctl.append(el("label", {}, "subset "), fs);
    const fo = el("select", { id: "filter-outcome" }); fo.appendChild(el("option", { value: "" }, "every outcome"));
    for (const c of D.flags) for (const [v, t] of [[1, "yes"], [0, "no"]])
      fo.appendChild(el("option", { value: c + ":" + v }, D.columns[c].name + ": " + t));
    if (D.flags.length) ctl.append(el("label", {}, " outcome "), fo);
    const heads = ["image", "index"].concat(D.item ? ["item"] : [], D.subsets ? ["subset"] : [], D.group ? ["group"] : [],
                                            D.columns.map(c => c.name));
    function cell(c, i) {
      const v = c.values[i];
      if (v === null || v === undefined) return el("td", {}, "–");
      if (c.type === "bool") return el("td", { class: v ? "right" : "wrong" }, v ? "yes" : "no");
      if (c.type === "number") return el("td", { class: "n" }, Number.isInteger(v) ? String(v) : v.toFixed(4));
      return el("td", {}, v);
    }
    const draw = listView(ctl, heads, D.unit, () => {
      const sub = Number(fs.value), [fc, fv] = fo.value ? fo.value.split(":").map(Number) : [-1, 0];
      return D.order.filter(i => (sub < 0 || D.subset[i] === sub) && (fc < 0 || D.columns[fc].values[i] === fv));
    }, i => {
      const tr = row(i, [[String(D.index[i]), "n"]]);
      if (D.item) tr.appendChild(el("td", {}, D.item[i] === null ? "–" : D.item[i]));
      if (D.subsets) tr.appendChild(el("td", {}, D.subsets[D.subset[i]]));
      if (D.group) tr.appendChild(el("td", {}, D.group[i] === null ? "–" : D.group[i]));
      for (const c of D.columns) tr.appendChild(cell(c, i));
      return tr;
    });
    fs.addEventListener("change", draw);
    fo.addEventListener("change", draw);
    draw();
  }

  function targets() {
    // every sample worst first (D.order), filtered by each group variable and by right/wrong (single-label)
    app.appendChild(el("p", {}, D.summary + ". " + (D.multilabel ? "Lowest score among a sample's true classes first."
      : D.margin ? "Lowest margin towards the true class first." : "Worst rank of the true class first.")));
    const ctl = el("div", { class: "controls" });
    const fg = D.groups.map((g, j) => {
      const s = el("select", { id: "filter-group-" + j }); s.appendChild(el("option", { value: "-1" }, "every " + g.name));
      g.names.forEach((n, c) => s.appendChild(el("option", { value: String(c) }, n)));
      ctl.append(el("label", {}, g.name + (g.worst ? " (worst-group variable) " : " ")), s);
      return s;
    });
    const fr = D.correct ? correctSelect() : null;
    if (fr) ctl.append(el("label", {}, " correct "), fr);
    const names = (cs, scores) => cs.map((c, j) => name(c) + (scores ? " " + (scores[j] === null ? "–" : scores[j].toFixed(3)) : "")).join(", ");
    const heads = ["image", "index"].concat(D.item ? ["item"] : [], D.groups.map(g => g.name),
      D.multilabel ? ["true classes", "top classes (score)", "lowest true-class score"]
                   : ["label", "predicted", "rank of the label"].concat(D.margin ? ["margin (class 1 − class 0)"] : [], ["correct"]));
    const num = v => [v === null ? "–" : v.toFixed(3), "n"];
    const draw = listView(ctl, heads, "samples", () => {
      const want = fg.map(s => Number(s.value));
      return D.order.filter(i => want.every((w, j) => w < 0 || D.groups[j].codes[i] === w) &&
        (!fr || fr.value === "all" || (fr.value === "right") === (D.correct[i] === 1)));
    }, i => {
      const cells = D.item ? [[D.item[i] === null ? "–" : D.item[i]]] : [];
      D.groups.forEach(g => cells.push([g.names[g.codes[i]] !== undefined ? g.names[g.codes[i]] : String(g.codes[i])]));
      cells.push([names(D.labels[i])], [names(D.top[i], D.top_scores && D.top_scores[i])]);
      if (D.multilabel) cells.push(num(D.lowest[i]));
      else {
        cells.push([String(D.rank[i]), "n"]);
        if (D.margin) cells.push(num(D.margin[i]));
        cells.push(D.correct[i] ? ["right", "right"] : ["wrong", "wrong"]);
      }
      return row(i, [[String(D.index[i]), "n"]].concat(cells));
    });
    for (const s of fg.concat(fr ? [fr] : [])) s.addEventListener("change", draw);
    draw();
  }
})();
"""
