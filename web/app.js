// neox-ckpt viewer: a single-page app over the JSON API in API.md. No framework, no build step,
// nothing loaded from elsewhere; charts are SVG built here. Routes live in the hash:
//   #/                     repository: revisions on a step timeline
//   #/step/REV             one step: model, files, optimizer, parameters
//   #/tensor/REV/NAME?state=weight|fp32|exp_avg|exp_avg_sq
//   #/dynamics             the analysis folder's metrics.json (when the server was given one)

const API = new URL("api/", location.href);
const SVG_NS = "http://www.w3.org/2000/svg";
const PALETTE = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#17becf",
  "#7f7f7f",
  "#bcbd22",
];
const STAT_ROWS = [
  ["numel", "elements"],
  ["mean", "mean"],
  ["std", "std"],
  ["rms", "RMS"],
  ["l2", "L2 norm"],
  ["maxAbs", "max |x|"],
  ["zeros", "zeros"],
  ["nan", "NaN"],
  ["inf", "±Inf"],
];

// ---------- small DOM helpers ----------

function el(ns, tag, attrs, children) {
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = String(v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children ?? []) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}
const h = (tag, attrs, ...children) => el(null, tag, attrs, children);
const s = (tag, attrs, ...children) => el(SVG_NS, tag, attrs, children);

function fmt(x) {
  if (x === null || x === undefined) return "–";
  if (typeof x !== "number") return String(x);
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return x.toLocaleString("en-US");
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(3);
  return String(Number(x.toPrecision(5)));
}
/** Axis labels: as short as the tick value allows. */
function fmtTick(x) {
  const a = Math.abs(x);
  const v = Number(x.toPrecision(6));
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential() : String(v);
}
function fmtBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
}
function stepLabel(step) {
  if (step >= 1e6) return `${step / 1e6}M`;
  if (step >= 1e3) return `${step / 1e3}k`;
  return String(step);
}
const enc = encodeURIComponent;
const stepHref = (rev) => `#/step/${enc(rev)}`;
const tensorHref = (rev, name, state) =>
  `#/tensor/${enc(rev)}/${enc(name)}${state && state !== "weight" ? `?state=${enc(state)}` : ""}`;

// Requests of the page shown; leaving it cancels them, so the server stops long computations.
let pageRequests = new AbortController();

async function getJson(path, { keep = false } = {}) {
  const r = await fetch(new URL(path, API), keep ? {} : { signal: pageRequests.signal });
  const body = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
  if (!r.ok) throw Object.assign(new Error(body.error ?? `${r.status}`), { status: r.status });
  return body;
}

// The repository listing is needed by several pages (neighbours, revision selector).
let repoPromise;
function repository() {
  repoPromise ??= getJson("repo", { keep: true }).catch((e) => {
    repoPromise = undefined;
    throw e;
  });
  return repoPromise;
}

/** A container that shows "loading…", then what `fill` returns, or the error. */
function section(testid, fill) {
  const box = h("div", { "data-testid": testid }, h("p", { class: "loading", text: "loading…" }));
  fill()
    .then((nodes) => box.replaceChildren(...[nodes].flat().filter(Boolean)))
    .catch((e) => box.replaceChildren(errorBox(e)));
  return box;
}
const errorBox = (e) =>
  h("p", { class: "error", "data-testid": "error", text: e.message ?? String(e) });

function setCrumbs(items) {
  const nav = document.getElementById("crumbs");
  const out = [];
  items.forEach(([label, href], i) => {
    if (i) out.push(h("span", { class: "sep", text: "›" }));
    out.push(href ? h("a", { href, text: label }) : h("span", { text: label }));
  });
  nav.replaceChildren(...out);
}

// ---------- scales and charts ----------

/** Step axis: log10(1 + step), so step 0 sits at the left edge and 1, 10, 100… spread evenly. */
const symlog = (step) => Math.log10(1 + Math.max(0, step));

function linearTicks(lo, hi, n = 5) {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((x) => span / x <= n) ?? 10 * mag;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    out.push(Number(t.toPrecision(12)));
  return out;
}

/** y scale over `values`: log when asked ("auto": positive values over more than two decades). */
function yScale(values, mode, top, bottom) {
  let v = values.filter((x) => x !== null && Number.isFinite(x));
  // A forced log scale leaves out zeros (step 0 of a change, say) rather than giving up.
  if (mode === true && v.some((x) => x > 0)) v = v.filter((x) => x > 0);
  let lo = Math.min(...v);
  let hi = Math.max(...v);
  if (!v.length) [lo, hi] = [0, 1];
  const positive = v.length > 0 && lo > 0;
  const log = positive && (mode === true || (mode === "auto" && hi / lo > 100));
  if (log) {
    let a = Math.floor(Math.log10(lo));
    let b = Math.ceil(Math.log10(hi));
    if (a === b) [a, b] = [a - 1, b + 1];
    const f = (x) => bottom - ((Math.log10(x) - a) / (b - a)) * (bottom - top);
    const ticks = [];
    const every = Math.max(1, Math.ceil((b - a) / 6));
    for (let e = a; e <= b; e += every) ticks.push(10 ** e);
    return { f, ticks, log };
  }
  if (lo === hi) {
    const d = Math.abs(lo) * 0.1 || 1;
    lo -= d;
    hi += d;
  } else {
    const pad = (hi - lo) * 0.06;
    lo -= pad;
    hi += pad;
  }
  const f = (x) => bottom - ((x - lo) / (hi - lo)) * (bottom - top);
  return { f, ticks: linearTicks(lo, hi), log };
}

/**
 * A line chart against the training step (log axis, step 0 shown).
 * series: [{ name, points: [{ step, y, href?, current?, label? }] }]
 */
function lineChart({ title, series, yLog = "auto", testid, yLabel }) {
  const W = 560;
  const H = 250;
  const m = { l: 62, r: 14, t: 10, b: 38 };
  const all = series.flatMap((se) => se.points);
  const maxStep = Math.max(1, ...all.map((p) => p.step));
  const xmax = symlog(maxStep);
  const x = (step) => m.l + (symlog(step) / xmax) * (W - m.l - m.r);
  const ys = yScale(
    all.map((p) => p.y),
    yLog,
    m.t,
    H - m.b,
  );
  const svg = s("svg", {
    width: W,
    height: H,
    viewBox: `0 0 ${W} ${H}`,
    "data-testid": testid,
    role: "img",
  });
  svg.append(s("title", { text: title }));
  for (const t of ys.ticks) {
    const y = ys.f(t);
    if (y < m.t - 0.5 || y > H - m.b + 0.5) continue;
    svg.append(s("line", { class: "grid", x1: m.l, x2: W - m.r, y1: y, y2: y }));
    svg.append(s("text", { x: m.l - 6, y: y + 3, "text-anchor": "end", text: fmtTick(t) }));
  }
  const xt = [0];
  for (let p = 1; p <= maxStep; p *= 10) xt.push(p);
  for (const t of xt) {
    const xx = x(t);
    svg.append(s("line", { class: "grid", x1: xx, x2: xx, y1: m.t, y2: H - m.b }));
    svg.append(s("text", { x: xx, y: H - m.b + 14, "text-anchor": "middle", text: stepLabel(t) }));
  }
  svg.append(s("line", { class: "axis", x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }));
  svg.append(s("line", { class: "axis", x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }));
  svg.append(
    s("text", {
      x: (m.l + W - m.r) / 2,
      y: H - 6,
      "text-anchor": "middle",
      text: "step (log scale, 0 at the left)",
    }),
  );
  if (yLabel)
    svg.append(
      s("text", {
        x: 12,
        y: (m.t + H - m.b) / 2,
        "text-anchor": "middle",
        transform: `rotate(-90 12 ${(m.t + H - m.b) / 2})`,
        text: yLabel,
      }),
    );
  series.forEach((se, i) => {
    const color = se.color ?? PALETTE[i % PALETTE.length];
    let d = "";
    let pen = "M";
    for (const p of se.points) {
      if (p.y === null || !Number.isFinite(p.y) || (ys.log && p.y <= 0)) {
        pen = "M";
        continue;
      }
      d += `${pen}${x(p.step).toFixed(1)},${ys.f(p.y).toFixed(1)}`;
      pen = "L";
    }
    if (d) svg.append(s("path", { class: "line", d, stroke: color }));
    for (const p of se.points) {
      if (p.y === null || !Number.isFinite(p.y) || (ys.log && p.y <= 0)) continue;
      const c = s("circle", {
        class: `point${p.current ? " current" : ""}`,
        "data-testid": `${testid}-point`,
        cx: x(p.step).toFixed(1),
        cy: ys.f(p.y).toFixed(1),
        r: p.current ? 4.5 : 3,
        fill: color,
        onclick: p.href ? () => (location.hash = p.href) : undefined,
      });
      c.append(
        s("title", {
          text: `${se.name}: step ${p.step}${p.label ? ` (${p.label})` : ""}: ${fmt(p.y)}`,
        }),
      );
      svg.append(c);
    }
  });
  const legend =
    series.length > 1
      ? h(
          "div",
          { class: "legend" },
          ...series.map((se, i) =>
            h("span", {}, h("span", { class: "swatch", "data-color": i }), se.name),
          ),
        )
      : null;
  if (legend)
    legend.querySelectorAll(".swatch").forEach((sw, i) => {
      sw.style.background = series[i].color ?? PALETTE[i % PALETTE.length];
    });
  return h(
    "div",
    { class: "chart", "data-testid": `${testid}-box` },
    h("div", { class: "title", text: title }),
    svg,
    legend,
  );
}

/** Bar chart of the 64 histogram bins over [-max|x|, max|x|]. */
function histogramChart(stats, logCounts) {
  const W = 560;
  const H = 220;
  const m = { l: 56, r: 14, t: 10, b: 34 };
  const bins = stats.histogram;
  const n = bins.length;
  const bw = (W - m.l - m.r) / n;
  const tr = (c) => (logCounts ? Math.log10(1 + c) : c);
  const top = Math.max(1e-9, ...bins.map(tr));
  const svg = s("svg", {
    width: W,
    height: H,
    viewBox: `0 0 ${W} ${H}`,
    "data-testid": "histogram",
    role: "img",
  });
  svg.append(s("title", { text: "histogram of the values" }));
  for (const t of logCounts
    ? [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9].filter((v) => tr(v) <= top)
    : linearTicks(0, top, 4)) {
    const y = H - m.b - (tr(t) / top) * (H - m.t - m.b);
    svg.append(s("line", { class: "grid", x1: m.l, x2: W - m.r, y1: y, y2: y }));
    svg.append(s("text", { x: m.l - 6, y: y + 3, "text-anchor": "end", text: fmtTick(t) }));
  }
  const M = stats.maxAbs;
  bins.forEach((c, i) => {
    const hgt = (tr(c) / top) * (H - m.t - m.b);
    const r = s("rect", {
      class: "bar",
      "data-testid": "histogram-bar",
      x: (m.l + i * bw + 0.5).toFixed(1),
      y: (H - m.b - hgt).toFixed(1),
      width: Math.max(0.5, bw - 1).toFixed(1),
      height: hgt.toFixed(1),
    });
    const lo = -M + (2 * M * i) / n;
    const hi = -M + (2 * M * (i + 1)) / n;
    r.append(s("title", { text: `[${fmt(lo)}, ${fmt(hi)}): ${c.toLocaleString("en-US")}` }));
    svg.append(r);
  });
  svg.append(s("line", { class: "axis", x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }));
  for (const [frac, label, anchor] of [
    [0, `−${fmt(M)}`, "start"],
    [0.5, "0", "middle"],
    [1, `+${fmt(M)}`, "end"],
  ])
    svg.append(
      s("text", {
        x: m.l + frac * (W - m.l - m.r),
        y: H - m.b + 14,
        "text-anchor": anchor,
        text: label,
      }),
    );
  svg.append(
    s("text", {
      x: (m.l + W - m.r) / 2,
      y: H - 4,
      "text-anchor": "middle",
      text: `value (64 bins between −max|x| and +max|x|)${logCounts ? ", log counts" : ""}`,
    }),
  );
  return svg;
}

function mix(a, b, t) {
  const pa = a.match(/\w\w/g).map((x) => Number.parseInt(x, 16));
  const pb = b.match(/\w\w/g).map((x) => Number.parseInt(x, 16));
  return `rgb(${pa.map((v, i) => Math.round(v + (pb[i] - v) * t)).join(",")})`;
}
/** Blue (negative) – white – red (positive), t in [-1, 1]. */
const diverging = (t) =>
  t < 0 ? mix("ffffff", "2166ac", Math.min(1, -t)) : mix("ffffff", "b2182b", Math.min(1, t));
/** Light yellow → dark blue, t in [0, 1]. */
function sequential(t) {
  const stops = ["ffffcc", "a1dab4", "41b6c4", "2c7fb8", "253494"];
  const u = Math.max(0, Math.min(1, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(u));
  return mix(stops[i], stops[i + 1], u - i);
}

/**
 * A heatmap of `values` (rows of numbers or null). `mode`: "diverging" (symmetric around 0) or
 * "log" (sequential over log10 of positive values).
 */
function heatmap({ values, rowLabel, colLabel, rowTicks, colTicks, mode, testid, cell, title }) {
  const rows = values.length;
  const cols = rows ? values[0].length : 0;
  const m = { l: 56, t: 8, r: 10, b: 30 };
  const cw = cell?.[0] ?? 8;
  const ch = cell?.[1] ?? 8;
  const W = m.l + cols * cw + m.r;
  const H = m.t + rows * ch + m.b;
  const flat = values.flat().filter((v) => v !== null && Number.isFinite(v));
  let color;
  let legend;
  if (mode === "log") {
    const pos = flat.filter((v) => v > 0);
    const lo = Math.log10(Math.min(...pos, 1));
    const hi = Math.log10(Math.max(...pos, 1e-30));
    color = (v) =>
      v > 0 ? sequential(hi > lo ? (Math.log10(v) - lo) / (hi - lo) : 0.5) : "#dddddd";
    legend = pos.length
      ? `colour: log10, ${fmt(10 ** lo)} (light) … ${fmt(10 ** hi)} (dark)`
      : "no positive values";
  } else {
    const M = Math.max(1e-30, ...flat.map(Math.abs));
    color = (v) => diverging(v / M);
    legend = `colour: −${fmt(M)} (blue) … 0 (white) … +${fmt(M)} (red)`;
  }
  const svg = s("svg", {
    width: W,
    height: H,
    viewBox: `0 0 ${W} ${H}`,
    "data-testid": testid,
    role: "img",
  });
  svg.append(s("title", { text: title ?? "heatmap" }));
  values.forEach((row, r) => {
    row.forEach((v, c) => {
      const rect = s("rect", {
        class: "cell",
        x: m.l + c * cw,
        y: m.t + r * ch,
        width: cw,
        height: ch,
        fill: v === null || !Number.isFinite(v) ? "#999999" : color(v),
      });
      rect.append(
        s("title", {
          text: `${rowLabel(r)}, ${colLabel(c)}: ${v === null ? "non-finite" : fmt(v)}`,
        }),
      );
      svg.append(rect);
    });
  });
  for (const [r, label] of rowTicks ?? [])
    svg.append(
      s("text", { x: m.l - 5, y: m.t + (r + 0.5) * ch + 3, "text-anchor": "end", text: label }),
    );
  for (const [c, label] of colTicks ?? [])
    svg.append(
      s("text", {
        x: m.l + (c + 0.5) * cw,
        y: m.t + rows * ch + 13,
        "text-anchor": "middle",
        text: label,
      }),
    );
  return h("div", { class: "chart" }, svg, h("div", { class: "legend", text: legend }));
}

/** Every `k`-th index of `n` (and the last), labelled by `f`. */
const everyNth = (n, k, f) =>
  Array.from({ length: n }, (_, i) => i)
    .filter((i) => i % k === 0 || i === n - 1)
    .map((i) => [i, f(i)]);

// ---------- pages ----------

async function repoPage() {
  setCrumbs([["repository"]]);
  let repo;
  try {
    repo = await repository();
  } catch (e) {
    if (e.status === 404) return repoListPage(e);
    throw e;
  }
  setCrumbs([[repo.name]]);
  const total = repo.revisions.reduce((n, r) => n + r.bytes, 0);
  const revs = repo.revisions;
  // Timeline: one dot per revision on the log-step axis.
  const W = 900;
  const H = 64;
  const steps = revs.filter((r) => r.step !== null);
  const maxStep = Math.max(1, ...steps.map((r) => r.step));
  const x = (st) => 20 + (symlog(st) / symlog(maxStep)) * (W - 40);
  const tl = s("svg", {
    width: W,
    height: H,
    viewBox: `0 0 ${W} ${H}`,
    "data-testid": "timeline",
    role: "img",
  });
  tl.append(s("title", { text: "revisions on a log-step axis" }));
  tl.append(s("line", { class: "axis", x1: 20, x2: W - 20, y1: 24, y2: 24 }));
  for (let p = 1; p <= maxStep; p *= 10)
    tl.append(s("text", { x: x(p), y: 56, "text-anchor": "middle", text: stepLabel(p) }));
  tl.append(s("text", { x: x(0), y: 56, "text-anchor": "middle", text: "0" }));
  for (const r of steps) {
    const c = s("circle", {
      class: "point",
      "data-testid": `timeline-point-${r.name}`,
      cx: x(r.step),
      cy: 24,
      r: 5,
      fill: PALETTE[0],
      onclick: () => (location.hash = stepHref(r.name)),
    });
    c.append(s("title", { text: `${r.name}: ${r.files} files, ${fmtBytes(r.bytes)}` }));
    tl.append(c);
  }
  const table = h(
    "table",
    { "data-testid": "revisions-table" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { text: "revision" }),
        h("th", { class: "num", text: "step" }),
        h("th", { class: "num", text: "files" }),
        h("th", { class: "num", text: "size" }),
      ),
    ),
    h(
      "tbody",
      {},
      ...revs.map((r) =>
        h(
          "tr",
          { "data-testid": "revision-row" },
          h(
            "td",
            {},
            h("a", {
              href: stepHref(r.name),
              "data-testid": `revision-link-${r.name}`,
              text: r.name,
            }),
          ),
          h("td", { class: "num", text: r.step === null ? "–" : fmt(r.step) }),
          h("td", { class: "num", text: fmt(r.files) }),
          h("td", { class: "num", text: fmtBytes(r.bytes) }),
        ),
      ),
    ),
  );
  return [
    h("h1", { "data-testid": "repo-title", text: repo.name }),
    h("div", { class: "sub", text: `${revs.length} revisions, ${fmtBytes(total)}` }),
    repo.analysis
      ? h(
          "p",
          {},
          h("a", {
            href: "#/dynamics",
            "data-testid": "dynamics-link",
            text: "training dynamics (analysis) →",
          }),
        )
      : null,
    h("h2", { text: "Step timeline" }),
    tl,
    h("h2", { text: "Revisions" }),
    table,
  ];
}

async function repoListPage(cause) {
  let list;
  try {
    list = await getJson("repos");
  } catch {
    throw cause;
  }
  setCrumbs([["repositories"]]);
  return [
    h("h1", { text: "Repositories" }),
    list.repositories.length
      ? h(
          "ul",
          { "data-testid": "repo-list" },
          ...list.repositories.map((r) =>
            h(
              "li",
              {},
              h("a", {
                href: `${r.split("/").map(enc).join("/")}/`,
                "data-testid": `repo-link-${r}`,
                text: r,
              }),
            ),
          ),
        )
      : h("p", { class: "note", text: "no ORG/NAME folders here" }),
  ];
}

function card(k, v) {
  return h(
    "div",
    { class: "card" },
    h("div", { class: "k", text: k }),
    h("div", { class: "v", text: v }),
  );
}

async function stepPage(rev) {
  setCrumbs([["repository", "#/"], [rev]]);
  const r = await getJson(`step/${enc(rev)}`);
  repository()
    .then((repo) => setCrumbs([[repo.name, "#/"], [rev]]))
    .catch(() => {});
  const md = r.model;
  const neighbours = section("step-nav", async () => {
    const repo = await repository();
    const i = repo.revisions.findIndex((x) => x.name === rev);
    const prev = repo.revisions[i - 1];
    const next = repo.revisions[i + 1];
    return h(
      "div",
      { class: "controls" },
      prev
        ? h("a", { href: stepHref(prev.name), "data-testid": "prev-step", text: `← ${prev.name}` })
        : null,
      next
        ? h("a", { href: stepHref(next.name), "data-testid": "next-step", text: `${next.name} →` })
        : null,
    );
  });
  const cards = h(
    "div",
    { class: "cards", "data-testid": "step-summary" },
    card("step", r.step === null ? "unknown" : fmt(r.step)),
    card("format", r.format),
    card("parallelism", `TP ${r.parallelism.tp} × PP ${r.parallelism.pp} × DP ${r.parallelism.dp}`),
    card("precision", r.precision),
    card(
      "DeepSpeed",
      `era ${r.deepspeed.era}${r.deepspeed.version ? `, ${r.deepspeed.version}` : ""}`,
    ),
    card(
      "parameters",
      `${fmt(r.parameters.total)} (${fmt(r.parameters.nonEmbedding)} non-embedding)`,
    ),
    card("layers × hidden", `${md.numLayers} × ${md.hiddenSize}`),
    card("heads / MLP", `${md.numHeads} heads, MLP ${md.intermediateSize}`),
    card("vocabulary (padded)", fmt(md.paddedVocab)),
    card(
      "positions / rotary",
      `${md.maxPositions}, rotary ${md.rotaryPct} (base ${md.rotaryBase})`,
    ),
    card("norm", `${md.norm}, eps ${md.layerNormEps}`),
    card(
      "residual / embeddings",
      `${md.gptjResidual ? "parallel (gpt-j)" : "sequential"}, ${md.tiedEmbeddings ? "tied" : "untied"}`,
    ),
  );
  const filter = h("input", {
    type: "search",
    placeholder: "filter tensors (substring)",
    "data-testid": "tensor-filter",
  });
  const rows = r.tensors.map((t) =>
    h(
      "tr",
      { "data-testid": "tensor-row", "data-name": t.name },
      h(
        "td",
        { class: "mono" },
        h("a", {
          href: tensorHref(rev, t.name),
          "data-testid": `tensor-link-${t.name}`,
          text: t.name,
        }),
      ),
      h("td", { class: "mono", text: `[${t.shape.join(", ")}]` }),
      h("td", { text: t.dtype }),
      h("td", { text: t.merge }),
      h("td", { class: "num", text: fmt(t.shape.reduce((a, b) => a * b, 1)) }),
      h("td", {
        class: "num",
        text: t.maxRankDifference === undefined ? "" : fmt(t.maxRankDifference),
      }),
    ),
  );
  filter.addEventListener("input", () => {
    const q = filter.value.trim().toLowerCase();
    for (const tr of rows) tr.hidden = q !== "" && !tr.dataset.name.toLowerCase().includes(q);
  });
  const tensorTable = h(
    "table",
    { "data-testid": "tensor-table" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ...["merged (HF) name", "shape", "dtype", "merge", "elements", "max rank diff"].map(
          (t, i) => h("th", { class: i >= 4 ? "num" : undefined, text: t }),
        ),
      ),
    ),
    h("tbody", {}, ...rows),
  );
  return [
    h("h1", { "data-testid": "step-title", text: r.step === null ? rev : `step ${fmt(r.step)}` }),
    h("div", { class: "sub", text: `${rev}${r.tag ? ` (${r.tag})` : ""} · ${r.folder}` }),
    neighbours,
    cards,
    r.notes.length
      ? h(
          "ul",
          { class: "note", "data-testid": "step-notes" },
          ...r.notes.map((n) => h("li", { text: n })),
        )
      : null,
    r.optimizer
      ? optimizerSection(r)
      : h("p", { class: "note", text: "no optimizer states in this step" }),
    h("h2", { text: `Parameters (${r.tensors.length})` }),
    h("div", { class: "controls" }, filter),
    tensorTable,
    h(
      "details",
      { "data-testid": "files-section" },
      h("summary", {
        text: `Files (${r.files.length}, ${fmtBytes(r.files.reduce((n, f) => n + f.size, 0))})`,
      }),
      h(
        "table",
        {},
        h(
          "tbody",
          {},
          ...r.files.map((f) =>
            h(
              "tr",
              {},
              h("td", { class: "mono", text: f.path }),
              h("td", { class: "num", text: fmtBytes(f.size) }),
            ),
          ),
        ),
      ),
    ),
    h(
      "details",
      { "data-testid": "config-section" },
      h("summary", { text: `Config (merged from ${r.configFiles.join(", ") || "no YAML"})` }),
      h("pre", { text: JSON.stringify(r.config, null, 2) }),
    ),
  ];
}

function optimizerSection(r) {
  const o = r.optimizer;
  const sc = r.optimizerScalars ?? {};
  const groups = sc.param_groups ?? [];
  return h(
    "div",
    { "data-testid": "optimizer-section" },
    h("h2", { text: "Optimizer" }),
    h(
      "div",
      { class: "cards" },
      card("ZeRO", `era ${o.era}, stage ${o.zeroStage ?? "?"}`),
      card("DP partitions / files", `${o.dpPartitions} / ${o.files}`),
      card("loss scale", fmt(sc.loss_scale ?? o.scalars?.loss_scaler?.cur_scale ?? null)),
      card(
        "dynamic loss scale",
        String(sc.dynamic_loss_scale ?? o.scalars?.dynamic_loss_scale ?? "–"),
      ),
      card("overflow", String(sc.overflow ?? "–")),
      card("iteration", fmt(sc.iteration ?? null)),
    ),
    h(
      "table",
      { "data-testid": "optimizer-groups" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...[
            "group",
            "parameters",
            "elements / TP rank",
            "lr",
            "betas",
            "eps",
            "weight decay",
          ].map((t) => h("th", { text: t })),
        ),
      ),
      h(
        "tbody",
        {},
        ...o.groups.map((g, i) => {
          const p = groups[i] ?? {};
          return h(
            "tr",
            {},
            h("td", { text: i }),
            h("td", { class: "num", text: fmt(g.params) }),
            h("td", { class: "num", text: fmt(g.numel) }),
            h("td", { class: "num", "data-testid": `optimizer-lr-${i}`, text: fmt(p.lr ?? null) }),
            h("td", { text: Array.isArray(p.betas) ? p.betas.map(fmt).join(", ") : "–" }),
            h("td", { class: "num", text: fmt(p.eps ?? null) }),
            h("td", { class: "num", text: fmt(p.weight_decay ?? null) }),
          );
        }),
      ),
    ),
    groups[0]?.source
      ? h("div", { class: "sub", text: `hyper-parameters from: ${groups[0].source}` })
      : null,
  );
}

async function tensorPage(rev, name, state) {
  setCrumbs([["repository", "#/"], [rev, stepHref(rev)], [name]]);
  repository()
    .then((repo) => setCrumbs([[repo.name, "#/"], [rev, stepHref(rev)], [name]]))
    .catch(() => {});
  const q = state && state !== "weight" ? `?state=${enc(state)}` : "";
  const t = await getJson(`tensor/${enc(rev)}/${enc(name)}${q}`);
  const st = t.stats;

  const controls = section("tensor-controls", async () => {
    const [repo, step] = await Promise.all([repository(), getJson(`step/${enc(rev)}`)]);
    const select = h(
      "select",
      {
        "data-testid": "revision-select",
        onchange: (e) => (location.hash = tensorHref(e.target.value, name, state)),
      },
      ...repo.revisions.map((r) =>
        h("option", {
          value: r.name,
          selected: r.name === rev ? "selected" : undefined,
          text: r.name,
        }),
      ),
    );
    return h(
      "div",
      { class: "controls" },
      h("span", { text: "state:" }),
      ...step.states.map((k) =>
        h("a", {
          class: `pill${k === (state || "weight") ? " on" : ""}`,
          href: tensorHref(rev, name, k),
          "data-testid": `state-${k}`,
          text: k,
        }),
      ),
      h("span", { text: "revision:" }),
      select,
    );
  });

  const statsTable = h(
    "table",
    { "data-testid": "stats-table" },
    h(
      "tbody",
      {},
      h(
        "tr",
        {},
        h("th", { text: "shape" }),
        h("td", { class: "mono", "data-testid": "stat-shape", text: `[${t.shape.join(", ")}]` }),
      ),
      h(
        "tr",
        {},
        h("th", { text: "dtype" }),
        h("td", { "data-testid": "stat-dtype", text: t.dtype }),
      ),
      h(
        "tr",
        {},
        h("th", { text: "merge" }),
        h("td", { "data-testid": "stat-merge", text: t.merge }),
      ),
      ...STAT_ROWS.map(([k, label]) =>
        h(
          "tr",
          {},
          h("th", { text: label }),
          h("td", {
            class: "num",
            "data-testid": `stat-${k}`,
            title: String(st[k]),
            text: fmt(st[k]),
          }),
        ),
      ),
    ),
  );

  const histBox = h("div", {}, histogramChart(st, false));
  const logToggle = h("input", { type: "checkbox", "data-testid": "histogram-log" });
  logToggle.addEventListener("change", () =>
    histBox.replaceChildren(histogramChart(st, logToggle.checked)),
  );

  // Heatmap of a ≤64×64 slice of the tensor seen as a matrix (leading dimensions flattened).
  const rowsIn = h("input", { type: "number", min: 0, value: 0, "data-testid": "slice-rows" });
  const colsIn = h("input", { type: "number", min: 0, value: 0, "data-testid": "slice-cols" });
  const heatBox = h("div", {});
  const loadSlice = () => {
    const r0 = Math.max(0, Math.floor(Number(rowsIn.value) || 0));
    const c0 = Math.max(0, Math.floor(Number(colsIn.value) || 0));
    heatBox.replaceChildren(
      section("slice", async () => {
        const sl = await getJson(
          `slice/${enc(rev)}/${enc(name)}?rows=${r0}&cols=${c0}${state && state !== "weight" ? `&state=${enc(state)}` : ""}`,
        );
        const [R, C] = sl.matrix;
        const cell = Math.max(
          4,
          Math.min(12, Math.floor(512 / Math.max(sl.values[0]?.length ?? 1, sl.values.length, 1))),
        );
        return [
          h("div", {
            class: "sub",
            "data-testid": "slice-info",
            text: `rows ${sl.rows[0]}…${sl.rows[1] - 1} and columns ${sl.cols[0]}…${sl.cols[1] - 1} of the ${fmt(R)} × ${fmt(C)} matrix${t.shape.length > 2 ? " (leading dimensions flattened)" : ""}`,
          }),
          heatmap({
            values: sl.values,
            mode: "diverging",
            testid: "heatmap",
            cell: [cell, cell],
            title: "slice heatmap",
            rowLabel: (r) => `row ${sl.rows[0] + r}`,
            colLabel: (c) => `col ${sl.cols[0] + c}`,
            rowTicks: everyNth(sl.values.length, 8, (r) => String(sl.rows[0] + r)),
            colTicks: everyNth(sl.values[0]?.length ?? 0, 8, (c) => String(sl.cols[0] + c)),
          }),
        ];
      }),
    );
  };
  const loadBtn = h("button", {
    type: "button",
    "data-testid": "slice-load",
    onclick: loadSlice,
    text: "show",
  });
  loadSlice();

  const across = section("across", async () => {
    const a = await getJson(`across/${enc(name)}${q}`);
    const ok = a.revisions.filter((x) => x.stats && x.step !== null);
    const pts = (key) =>
      ok.map((x) => ({
        step: x.step,
        y: x.stats[key],
        href: tensorHref(x.revision, name, state),
        current: x.revision === rev,
        label: x.revision,
      }));
    const missing = a.revisions.filter((x) => !x.stats);
    return [
      h(
        "div",
        { class: "row", "data-testid": "across-chart" },
        lineChart({
          title: "L2 norm across steps",
          series: [{ name: "L2", points: pts("l2") }],
          testid: "across-l2",
        }),
        lineChart({
          title: "RMS across steps",
          series: [{ name: "RMS", points: pts("rms"), color: PALETTE[1] }],
          testid: "across-rms",
        }),
      ),
      missing.length
        ? h("p", {
            class: "note",
            "data-testid": "across-missing",
            text: `not at ${missing.map((x) => `${x.revision} (${x.error})`).join("; ")}`,
          })
        : null,
      h(
        "details",
        {},
        h("summary", { text: "values" }),
        h(
          "table",
          { "data-testid": "across-table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ...["revision", "step", "L2", "RMS", "mean", "std", "max |x|"].map((x) =>
                h("th", { text: x }),
              ),
            ),
          ),
          h(
            "tbody",
            {},
            ...ok.map((x) =>
              h(
                "tr",
                {},
                h(
                  "td",
                  {},
                  h("a", { href: tensorHref(x.revision, name, state), text: x.revision }),
                ),
                ...[x.step, x.stats.l2, x.stats.rms, x.stats.mean, x.stats.std, x.stats.maxAbs].map(
                  (v) => h("td", { class: "num", text: fmt(v) }),
                ),
              ),
            ),
          ),
        ),
      ),
    ];
  });

  return [
    h("h1", { class: "mono", "data-testid": "tensor-title", text: name }),
    h("div", {
      class: "sub",
      "data-testid": "tensor-sub",
      text: `${rev}${t.step !== null ? ` (step ${fmt(t.step)})` : ""} · ${state || "weight"} · ${t.sources.length} source${t.sources.length === 1 ? "" : "s"}`,
    }),
    controls,
    h(
      "div",
      { class: "row" },
      h("div", {}, h("h2", { text: "Statistics" }), statsTable),
      h(
        "div",
        {},
        h("h2", { text: "Histogram" }),
        histBox,
        h("label", {}, logToggle, " log counts"),
      ),
    ),
    h("h2", { text: "Slice" }),
    h(
      "div",
      { class: "controls" },
      h("label", {}, "first row ", rowsIn),
      h("label", {}, "first column ", colsIn),
      loadBtn,
    ),
    heatBox,
    h("h2", { text: "Across steps" }),
    across,
  ];
}

async function dynamicsPage() {
  setCrumbs([["repository", "#/"], ["dynamics"]]);
  let m;
  try {
    m = await getJson("dynamics");
  } catch (e) {
    if (e.status !== 404) throw e;
    return h("p", {
      class: "note",
      "data-testid": "dynamics-missing",
      text: `No training-dynamics analysis: ${e.message}. Write one with \`neox-ckpt analyze REPO --out DIR\` and start the viewer with \`--analysis DIR\`.`,
    });
  }
  const steps = m.steps;
  const kinds = Object.keys(m.byKind);
  const kindSeries = (key) =>
    kinds.map((k) => ({
      name: k,
      points: steps.map((st) => ({ step: st, y: m.byKind[k][st]?.[key] ?? null })),
    }));
  const layerOrder = (k) => (/^-?\d+$/.test(k) ? Number(k) : Number.POSITIVE_INFINITY);
  const layers = Object.keys(m.byLayer).sort(
    (a, b) => layerOrder(a) - layerOrder(b) || (a < b ? -1 : 1),
  );
  const hasUpdate = kinds.some((k) =>
    steps.some((st) => (m.byKind[k][st]?.updateToWeight ?? 0) > 0),
  );
  const names = m.tensors.map((t) => t.name);
  const chooser = h(
    "select",
    { "data-testid": "dynamics-tensor-select" },
    ...names.map((n) => h("option", { value: n, text: n })),
  );
  const tensorBox = h("div", {});
  const showTensor = () => {
    const n = chooser.value;
    const per = m.metrics[n] ?? {};
    const series = (key, f) => [
      { name: key, points: steps.map((st) => ({ step: st, y: per[st] ? f(per[st]) : null })) },
    ];
    tensorBox.replaceChildren(
      h(
        "p",
        {},
        h("a", {
          href: tensorHref(`step${steps[steps.length - 1]}`, n),
          "data-testid": "dynamics-tensor-link",
          text: "open this tensor →",
        }),
      ),
      h(
        "div",
        { class: "row" },
        lineChart({ title: "L2 norm", series: series("L2", (x) => x.l2), testid: "dyn-tensor-l2" }),
        lineChart({
          title: "relative change to the previous step",
          series: series("‖Δ‖/‖w‖", (x) => x.toPrevious?.relL2 ?? null),
          yLog: true,
          testid: "dyn-tensor-rel",
        }),
      ),
    );
  };
  chooser.addEventListener("change", showTensor);
  showTensor();
  return h(
    "div",
    { "data-testid": "dynamics-charts" },
    h("h1", { text: "Training dynamics" }),
    h("div", {
      class: "sub",
      text: `${m.repository}: ${steps.length} steps, ${m.tensors.length} tensors`,
    }),
    h(
      "div",
      { class: "row" },
      lineChart({
        title: "L2 norm by parameter kind",
        series: kindSeries("l2"),
        testid: "dyn-kind-l2",
      }),
      lineChart({
        title: "relative change to the previous step, by kind",
        series: kindSeries("relToPrevious"),
        yLog: true,
        testid: "dyn-kind-rel",
      }),
      hasUpdate
        ? lineChart({
            title: "Adam update / weight, by kind",
            series: kindSeries("updateToWeight"),
            yLog: true,
            testid: "dyn-kind-update",
          })
        : null,
    ),
    h("h2", { text: "Relative change to the previous step, layer × step" }),
    heatmap({
      values: layers.map((l) => steps.map((st) => m.byLayer[l][st]?.relToPrevious ?? null)),
      mode: "log",
      testid: "dyn-layer-heatmap",
      cell: [Math.max(8, Math.floor(600 / Math.max(1, steps.length))), 18],
      title: "relative change per layer and step",
      rowLabel: (r) => `layer ${layers[r]}`,
      colLabel: (c) => `step ${steps[c]}`,
      rowTicks: layers.map((l, i) => [i, l]),
      colTicks: everyNth(steps.length, Math.max(1, Math.ceil(steps.length / 12)), (c) =>
        stepLabel(steps[c]),
      ),
    }),
    h("h2", { text: "One tensor" }),
    h("div", { class: "controls" }, chooser),
    tensorBox,
  );
}

// ---------- router ----------

let renderId = 0;
async function route() {
  const id = ++renderId;
  pageRequests.abort();
  pageRequests = new AbortController();
  const main = document.getElementById("main");
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, qs] = raw.split("?");
  const query = new URLSearchParams(qs ?? "");
  let parts;
  try {
    parts = path === "" ? [] : path.split("/").map(decodeURIComponent);
  } catch {
    parts = ["?"];
  }
  main.replaceChildren(h("p", { class: "loading", "data-testid": "loading", text: "loading…" }));
  let page;
  if (parts.length === 0) page = repoPage();
  else if (parts[0] === "step" && parts.length === 2) page = stepPage(parts[1]);
  else if (parts[0] === "tensor" && parts.length === 3)
    page = tensorPage(parts[1], parts[2], query.get("state") ?? "weight");
  else if (parts[0] === "dynamics" && parts.length === 1) page = dynamicsPage();
  else page = Promise.reject(new Error(`no page ${location.hash}`));
  try {
    const nodes = await page;
    if (id === renderId) main.replaceChildren(...[nodes].flat().filter(Boolean));
  } catch (e) {
    if (id === renderId)
      main.replaceChildren(errorBox(e), h("p", {}, h("a", { href: "#/", text: "← repository" })));
  }
  if (id === renderId) window.scrollTo(0, 0);
}

window.addEventListener("hashchange", route);
route();
