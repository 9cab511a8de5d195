// sagan studio: the page. No libraries: charts are SVG drawn here, maps are canvas pixels.
"use strict";

const $ = (id) => document.getElementById(id);
const colours = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#0a7ea4", "#bf3989", "#57606a"];
const dashes = ["", "6 3", "2 3", "8 3 2 3"];

// ---- Talking to the server ----------------------------------------------------------------------

/** JSON from the API; a failure throws an Error carrying the server's message. */
async function api(path, options) {
  const response = await fetch(path, options);
  if (!response.ok) throw new Error(await errorText(response));
  return response.json();
}

/** An image from the API as an object URL (so that it can also be downloaded). */
async function apiImage(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(await errorText(response));
  return URL.createObjectURL(await response.blob());
}

async function errorText(response) {
  try {
    const body = await response.json();
    return body.error?.message || response.statusText;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

function query(parameters) {
  return new URLSearchParams(Object.entries(parameters).filter(([, v]) => v !== null && v !== undefined)).toString();
}

function status(text) { $("status").textContent = text; }

function format(value, digits = 4) {
  if (value === null || value === undefined || value === "") return "";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return value.toLocaleString("en");
  return Math.abs(value) >= 100 ? value.toFixed(1) : value.toPrecision(digits);
}

function ago(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} days ago`;
}

// ---- Metrics: the log's rows as series ----------------------------------------------------------

/** Training rows and evaluation rows of metrics.jsonl, kept in step order as they arrive. */
class Metrics {
  constructor() { this.training = []; this.evaluations = []; }

  add(rows) {
    for (const row of rows) (row.kind === "eval" ? this.evaluations : this.training).push(row);
  }

  /** [[step, value]] of one tag; values logged as strings ("nan") are left out. */
  series(tag) {
    const rows = tag.startsWith("eval:") ? this.evaluations : this.training;
    const key = tag.startsWith("eval:") ? tag.slice(5) : tag;
    return rows.filter((row) => typeof row[key] === "number").map((row) => [row.step, row[key]]);
  }

  tags() {
    const seen = new Set();
    for (const row of this.training) for (const key of Object.keys(row)) seen.add(key);
    for (const row of this.evaluations) for (const key of Object.keys(row)) seen.add("eval:" + key);
    return seen;
  }
}

/** The evaluation metrics' charts, one per metric of sagan's registry (/api/evaluation-metrics). */
let evaluationCharts = [];

/** The charts of a run: each a title and the tags it draws (those present). */
function chartPlan(tags) {
  const plan = [
    { title: "Loss", tags: ["Loss/D", "Loss/G"] },
    { title: "D outputs", tags: ["D/real", "D/fake"] },
    { title: "Attention γ", tags: [...tags].filter((tag) => tag.startsWith("Attn/")).sort() },
    { title: "Seconds per step", tags: ["Time/sec_per_step"] },
    ...evaluationCharts.map((metric) => ({ title: metric.title, tags: [`eval:${metric.key}`] })),
  ];
  return plan.map((chart) => ({ ...chart, tags: chart.tags.filter((tag) => tags.has(tag)) }))
    .filter((chart) => chart.tags.length > 0);
}

function label(tag) {
  return tag.replace(/^eval:/, "").replace(/^Attn\/(.*)\/gamma$/, "γ $1");
}

/** TensorBoard's smoothing: an exponential moving average, debiased at the start. */
function smooth(points, weight) {
  if (weight <= 0) return points;
  let last = 0;
  let count = 0;
  return points.map(([x, y]) => {
    last = last * weight + (1 - weight) * y;
    count += 1;
    return [x, last / (1 - Math.pow(weight, count))];
  });
}

// ---- Charts -------------------------------------------------------------------------------------

const svgNS = "http://www.w3.org/2000/svg";

function svgElement(name, attributes, parent) {
  const element = document.createElementNS(svgNS, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (parent) parent.appendChild(element);
  return element;
}

/**
 * About `count` round ticks covering [low, high], each {value, text}: values are whole multiples of
 * the step (so 0 is exactly 0), and every label shows the decimals the step needs, no more, so no two
 * labels read alike. `whole` keeps steps of at least 1 (training steps).
 */
function ticks(low, high, count, whole = false) {
  if (!(high > low)) return [{ value: low, text: format(low) }];
  const raw = (high - low) / count;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  let step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  if (whole) step = Math.max(1, Math.round(step));
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const result = [];
  for (let k = Math.ceil(low / step - 1e-9); k * step <= high + step * 1e-9; k += 1) {
    const value = k * step;
    const large = Math.abs(value) >= 1e5 || (decimals > 5 && value !== 0);
    const text = large ? value.toExponential(2) : (k === 0 ? 0 : value).toLocaleString("en", {
      minimumFractionDigits: decimals, maximumFractionDigits: decimals,
    });
    result.push({ value, text });
  }
  return result;
}

/** At most about `limit` points: every k-th, always keeping the last. */
function thin(points, limit) {
  if (points.length <= limit) return points;
  const every = Math.ceil(points.length / limit);
  const kept = points.filter((_, index) => index % every === 0);
  if (kept[kept.length - 1] !== points[points.length - 1]) kept.push(points[points.length - 1]);
  return kept;
}

/**
 * One chart: `lines` are {name, points, colour, dash}; `zoom` the shared step range or null.
 * Dragging selects a step range (onZoom), double-click resets, hovering shows the values.
 */
function drawChart(container, title, lines, zoom, onZoom, log = false) {
  container.innerHTML = "";
  container.className = "chart";
  const heading = document.createElement("h3");
  heading.textContent = title;
  container.appendChild(heading);
  const width = 560;
  const height = 230;
  const margin = { left: 68, right: 16, top: 8, bottom: 34 };
  const svg = svgElement("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" }, container);
  const all = lines.flatMap((line) => line.points);
  svg.dataset.points = String(all.length);
  if (all.length === 0) return;
  const xs = all.map((p) => p[0]);
  let [x0, x1] = zoom || [Math.min(...xs), Math.max(...xs)];
  if (x1 <= x0) {
    // One step (a single evaluation): centre it in a window of ±5% of its step.
    const half = Math.max(1, Math.round(Math.abs(x0) * 0.05));
    [x0, x1] = [x0 - half, x1 + half];
  }
  svg.dataset.range = `${x0},${x1}`;
  const visible = all.filter(([x]) => x >= x0 && x <= x1).map((p) => p[1]);
  let y0 = Math.min(...(visible.length ? visible : [0]));
  let y1 = Math.max(...(visible.length ? visible : [1]));
  if (y1 <= y0) { y0 -= 0.5; y1 += 0.5; }
  const pad = (y1 - y0) * 0.06;
  y0 -= pad; y1 += pad;
  const px = (x) => margin.left + (x - x0) / (x1 - x0) * (width - margin.left - margin.right);
  const py = (y) => height - margin.bottom - (y - y0) / (y1 - y0) * (height - margin.top - margin.bottom);
  const axis = svgElement("g", { class: "axis" }, svg);
  for (const { value, text } of ticks(y0, y1, 4)) {
    svgElement("line", { x1: margin.left, x2: width - margin.right, y1: py(value), y2: py(value) }, axis);
    svgElement("text", { x: margin.left - 4, y: py(value) + 3, "text-anchor": "end" }, axis).textContent =
      log ? format(Math.pow(10, value), 3) : text;
  }
  if (log) {
    svgElement("text", { x: 2, y: margin.top + 8, class: "title" }, axis).textContent = "log";
  }
  for (const { value, text } of ticks(x0, x1, 6, true)) {
    // Labels at the edges are anchored inward, so none is cut.
    const x = px(value);
    const anchor = x > width - margin.right - 24 ? "end" : x < margin.left + 24 ? "start" : "middle";
    svgElement("text", { x, y: height - margin.bottom + 13, "text-anchor": anchor, class: "tick-x" }, axis)
      .textContent = text;
  }
  svgElement("text", { x: width - margin.right, y: height - 3, "text-anchor": "end", class: "title" }, axis)
    .textContent = "step";
  const middle = (margin.top + height - margin.bottom) / 2;
  svgElement("text", { x: 10, y: middle, "text-anchor": "middle", class: "title y-title",
    transform: `rotate(-90 10 ${middle})` }, axis).textContent = title;
  const clip = `clip-${Math.random().toString(36).slice(2)}`;
  const defs = svgElement("defs", {}, svg);
  svgElement("rect", {
    x: margin.left, y: margin.top, width: width - margin.left - margin.right,
    height: height - margin.top - margin.bottom,
  }, svgElement("clipPath", { id: clip }, defs));
  for (const line of lines) {
    const points = thin(line.points.filter(([x]) => x >= x0 && x <= x1), 1500);
    if (points.length === 0) continue;
    const attributes = {
      points: points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" "),
      fill: "none", stroke: line.colour, "stroke-width": line.raw ? 1 : 1.6, "stroke-dasharray": line.dash,
      "clip-path": `url(#${clip})`, "data-name": line.name, opacity: line.raw ? 0.25 : 1,
      class: line.raw ? "raw" : "smoothed",
    };
    svgElement("polyline", attributes, svg);
    if (points.length < 30 && !line.raw) {
      for (const [x, y] of points) svgElement("circle", { cx: px(x), cy: py(y), r: 2.5, fill: line.colour }, svg);
    }
    // ± one standard deviation (KID's over its subsets), as error bars.
    for (const [x, low, high] of (line.errors ?? []).filter(([x]) => x >= x0 && x <= x1)) {
      svgElement("line", { x1: px(x), x2: px(x), y1: py(low), y2: py(high), stroke: line.colour,
        "stroke-width": 1.2, class: "error-bar", "clip-path": `url(#${clip})` }, svg);
    }
  }
  const legend = document.createElement("div");
  legend.className = "legend";
  for (const line of lines.filter((candidate) => !candidate.raw)) {
    // The swatch is the line itself: its colour and its dash.
    const item = document.createElement("span");
    const swatch = svgElement("svg", { width: 26, height: 8, "aria-hidden": "true" }, item);
    svgElement("line", { x1: 0, x2: 26, y1: 4, y2: 4, stroke: line.colour, "stroke-width": 2,
      "stroke-dasharray": line.dash }, swatch);
    item.append(line.name + (line.errors?.length ? " (± std)" : ""));
    legend.appendChild(item);
  }
  container.appendChild(legend);

  // Hover: a vertical rule and each line's value at the nearest logged step.
  const rule = svgElement("line", { y1: margin.top, y2: height - margin.bottom, stroke: "#999", visibility: "hidden" },
    svg);
  const selection = svgElement("rect", { y: margin.top, height: height - margin.top - margin.bottom,
    fill: "rgba(31,111,235,0.15)", visibility: "hidden" }, svg);
  const tip = document.createElement("div");
  tip.className = "tip";
  tip.hidden = true;
  container.appendChild(tip);
  const stepAt = (event) => {
    const box = svg.getBoundingClientRect();
    const sx = (event.clientX - box.left) / box.width * width;
    return { sx, step: x0 + (sx - margin.left) / (width - margin.left - margin.right) * (x1 - x0) };
  };
  let dragStart = null;
  svg.addEventListener("mousedown", (event) => { dragStart = stepAt(event); });
  svg.addEventListener("mousemove", (event) => {
    const { sx, step } = stepAt(event);
    rule.setAttribute("x1", sx);
    rule.setAttribute("x2", sx);
    rule.setAttribute("visibility", "visible");
    if (dragStart) {
      selection.setAttribute("x", Math.min(sx, dragStart.sx));
      selection.setAttribute("width", Math.abs(sx - dragStart.sx));
      selection.setAttribute("visibility", "visible");
    }
    const rows = lines.filter((line) => !line.raw).map((line) => {
      let best = null;
      for (const point of line.points) if (!best || Math.abs(point[0] - step) < Math.abs(best[0] - step)) best = point;
      return best ? `${line.name}: ${format(best[2] ?? best[1])} @ ${format(best[0])}` : null;
    }).filter(Boolean);
    tip.textContent = "";
    for (const row of rows) {
      const div = document.createElement("div");
      div.textContent = row;
      tip.appendChild(div);
    }
    tip.hidden = rows.length === 0;
    // Right of the pointer, or left of it where the tip would cross the chart's right edge.
    const left = event.offsetX + 14;
    const fits = left + tip.offsetWidth <= container.clientWidth - 4;
    tip.style.left = `${Math.max(0, fits ? left : event.offsetX - 14 - tip.offsetWidth)}px`;
    tip.style.top = `${event.offsetY + 20}px`;
  });
  svg.addEventListener("mouseleave", () => {
    rule.setAttribute("visibility", "hidden");
    selection.setAttribute("visibility", "hidden");
    tip.hidden = true;
    dragStart = null;
  });
  svg.addEventListener("mouseup", (event) => {
    const end = stepAt(event);
    if (dragStart && Math.abs(end.sx - dragStart.sx) > 4) {
      onZoom([Math.min(dragStart.step, end.step), Math.max(dragStart.step, end.step)]);
    }
    dragStart = null;
    selection.setAttribute("visibility", "hidden");
  });
  svg.addEventListener("dblclick", () => onZoom(null));
}

// ---- The list of runs ---------------------------------------------------------------------------

let runsTimer = null;

async function showRuns() {
  page.details = null;
  $("runs-view").hidden = false;
  $("run-view").hidden = true;
  $("where").textContent = "";
  const refresh = async () => {
    try {
      renderRuns(await api("/api/runs"));
      status(`updated ${new Date().toLocaleTimeString()}`);
    } catch (error) {
      status(error.message);
    }
  };
  await refresh();
  runsTimer = setInterval(refresh, 5000);
}

function renderRuns(runs) {
  const body = $("runs-table").querySelector("tbody");
  const ticked = new Set([...body.querySelectorAll("input:checked")].map((box) => box.value));
  body.innerHTML = "";
  $("no-runs").hidden = runs.length > 0;
  for (const run of runs) {
    const row = document.createElement("tr");
    const cells = [
      null, null, run.preset ?? "", run.resolution ? `${run.resolution}×${run.resolution}×${run.imageChannels}` : "",
      `${format(run.step ?? 0)} / ${format(run.steps ?? 0)}`, format(run.imagesSeen), format(run.lossD),
      format(run.lossG), format(run.realLogit), format(run.fakeLogit), format(run.kid), format(run.fid),
      ago(run.secondsSinceUpdate),
    ];
    cells.forEach((text, index) => {
      const cell = document.createElement("td");
      if (index === 0) {
        const box = document.createElement("input");
        box.type = "checkbox";
        box.value = run.id;
        box.checked = ticked.has(run.id);
        box.addEventListener("change", updateCompareButton);
        cell.appendChild(box);
      } else if (index === 1) {
        const link = document.createElement("a");
        link.href = `#/run/${encodeURIComponent(run.id)}`;
        link.textContent = run.name;
        cell.appendChild(link);
      } else {
        cell.textContent = text;
      }
      if (index === 12 && run.secondsSinceUpdate < 120) cell.className = "live";
      row.appendChild(cell);
    });
    body.appendChild(row);
  }
  updateCompareButton();
}

function updateCompareButton() {
  const ticked = [...document.querySelectorAll("#runs-table input:checked")].map((box) => box.value);
  $("compare").disabled = ticked.length < 1;
  $("compare").onclick = () => {
    location.hash = `#/run/${encodeURIComponent(ticked[0])}?overlay=${ticked.slice(1).map(encodeURIComponent)
      .join(",")}`;
  };
}

// ---- A run's page -------------------------------------------------------------------------------

/** The state of the open run page. */
const page = {
  run: null, details: null, metrics: new Metrics(), overlays: new Map(), zoom: null, events: null,
  pictures: { samples: [], attention: [] }, followLatest: true, checkpointPinned: false, lastUpdate: 0,
};

/** Empties everything a previous run put on the page, so that nothing of it outlives a navigation. */
function clearRunPage() {
  $("charts").innerHTML = "";
  $("run-title").textContent = "";
  $("run-summary").textContent = "";
  $("run-error").hidden = true;
  for (const id of ["sample-image", "attention-image", "generated", "strip", "grid"]) {
    $(id).removeAttribute("src");
    delete $(id).dataset.step;
  }
  for (const id of ["strip", "grid", "download-strip", "download-grid", "strip-error", "grid-error", "seed-error",
    "attention-error"]) $(id).hidden = true;
  $("generated").dataset.ready = "false";
  $("generated-caption").textContent = "";
  $("download-generated").removeAttribute("href");
  $("attention-maps").innerHTML = "";
  $("checkpoint").innerHTML = "";
  $("sample-slider").max = "0";
  $("sample-step").textContent = "";
  Object.assign(playground, { upload: null, pinned: null, imageSide: 0, shown: null, overlay: null });
  $("colour-scale").hidden = true;
  $("overlay-layer").innerHTML = "";
  $("attention-overlay").getContext("2d").clearRect(0, 0, $("attention-overlay").width, $("attention-overlay").height);
  $("attention-net").value = "G";
}

/** The run's one-line summary, kept current as a live run logs steps. */
function renderSummary() {
  const summary = page.details.summary;
  $("run-summary").textContent = [
    summary.preset, summary.resolution && `${summary.resolution}×${summary.resolution}×${summary.imageChannels}`,
    `step ${format(summary.step ?? 0)} of ${format(summary.steps ?? 0)}`,
    summary.imagesSeen && `${format(summary.imagesSeen)} images seen`,
  ].filter(Boolean).join(" · ");
}

/** Whether the run is training now, finished, or quiet: the header says which. */
function renderLiveness() {
  if (!page.details) return;
  const { step, steps } = page.details.summary;
  const quiet = (Date.now() - page.lastUpdate) / 1000;
  if (steps && step >= steps) {
    status(`training finished at step ${format(step)}`);
  } else if (quiet < 60) {
    status(`live · updated ${new Date(page.lastUpdate).toLocaleTimeString()}`);
  } else {
    status(`not training · last update ${ago(quiet)}`);
  }
}

async function showRun(id, overlayIDs) {
  $("runs-view").hidden = true;
  $("run-view").hidden = false;
  clearRunPage();
  Object.assign(page, {
    run: id, details: null, metrics: new Metrics(), overlays: new Map(), zoom: null, followLatest: true,
    checkpointPinned: false,
  });
  $("where").textContent = id;
  $("run-content").hidden = true;
  try {
    // Asked of the list first: a run that is not there is an answer, not a failed request.
    const known = (await api("/api/runs")).some((run) => run.id === id);
    if (!known) throw new Error(`There is no run named “${id}” in this studio's folder.`);
    page.details = await api(`/api/run?${query({ run: id })}`);
  } catch (error) {
    $("run-title").textContent = id;
    $("run-error").textContent = error.message;
    $("run-error").hidden = false;
    status("");
    return;
  }
  $("run-content").hidden = false;
  const summary = page.details.summary;
  page.lastUpdate = Date.now() - 1000 * (summary.secondsSinceUpdate ?? 1e9);
  $("run-title").textContent = summary.name;
  renderSummary();
  renderLiveness();
  $("curves-loading").hidden = false;
  const metrics = await api(`/api/metrics?${query({ run: id })}`);
  $("curves-loading").hidden = true;
  page.metrics.add(metrics.rows);
  await loadOverlayChoices(id, overlayIDs);
  drawCharts();
  setPictures(page.details.pictures);
  setCheckpoints(page.details.checkpoints, summary.classCount);
  listen(id, metrics.length);
}

async function loadOverlayChoices(id, chosen) {
  const select = $("overlay");
  select.innerHTML = "";
  const runs = await api("/api/runs");
  for (const run of runs.filter((run) => run.id !== id)) {
    const option = document.createElement("option");
    option.value = run.id;
    option.textContent = run.name;
    option.selected = chosen.includes(run.id);
    select.appendChild(option);
  }
  select.size = Math.min(4, Math.max(1, select.options.length));
  await loadOverlays(chosen);
}

async function loadOverlays(ids) {
  page.overlays = new Map();
  for (const other of ids) {
    try {
      const metrics = new Metrics();
      metrics.add((await api(`/api/metrics?${query({ run: other })}`)).rows);
      page.overlays.set(other, metrics);
    } catch (error) {
      status(`${other}: ${error.message}`);
    }
  }
}

function drawCharts() {
  const weight = +$("smoothing").value;
  const runs = [[page.run, page.metrics], ...page.overlays];
  const tags = new Set();
  for (const [, metrics] of runs) for (const tag of metrics.tags()) tags.add(tag);
  const container = $("charts");
  container.innerHTML = "";
  const plan = chartPlan(tags);
  $("no-curves").hidden = plan.length > 0;
  $("download-metrics").hidden = plan.length === 0;
  const overlaid = runs.length > 1;
  for (const chart of plan) {
    let lines = [];
    runs.forEach(([id, metrics], runIndex) => {
      chart.tags.forEach((tag, tagIndex) => {
        const points = metrics.series(tag);
        if (points.length === 0) return;
        // One run: a colour per curve. Overlaid runs: a colour per run, a dash per curve.
        const colour = colours[(overlaid ? runIndex : tagIndex) % colours.length];
        const dash = dashes[(overlaid ? tagIndex : 0) % dashes.length];
        const name = overlaid ? `${id}: ${label(tag)}` : label(tag);
        if (tag.startsWith("eval:")) {
          const spread = metrics.series(`${tag}_std`);
          const errors = spread.map(([x, std]) => {
            const y = points.find(([step]) => step === x)?.[1];
            return y === undefined ? null : [x, y - std, y + std];
          }).filter(Boolean);
          lines.push({ name, points, colour, dash, errors });
        } else {
          if (weight > 0) lines.push({ name, points, colour, dash, raw: true });
          lines.push({ name, points: smooth(points, weight), colour, dash });
        }
      });
    });
    // Log scale where every value is positive (losses and D outputs can be negative: left linear).
    const log = $("log-scale").checked && lines.every((line) => line.points.every(([, y]) => y > 0)
      && (line.errors ?? []).every(([, low]) => low > 0));
    if (log) {
      lines = lines.map((line) => ({
        ...line, points: line.points.map(([x, y]) => [x, Math.log10(y), y]),
        errors: line.errors?.map(([x, low, high]) => [x, Math.log10(low), Math.log10(high)]),
      }));
    }
    const box = document.createElement("div");
    container.appendChild(box);
    drawChart(box, chart.title, lines, page.zoom, (zoom) => { page.zoom = zoom; drawCharts(); }, log);
  }
}

/** The run's logged rows as CSV: one column per key, training and evaluation rows in step order. */
function metricsCSV(metrics) {
  const rows = [...metrics.training, ...metrics.evaluations].sort((a, b) => (a.step ?? 0) - (b.step ?? 0));
  const keys = [...new Set(rows.flatMap((row) => Object.keys(row)))].sort((a, b) =>
    a === "step" ? -1 : b === "step" ? 1 : a.localeCompare(b));
  const cell = (value) => {
    if (value === undefined || value === null) return "";
    const text = String(value);
    return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  return [keys.join(","), ...rows.map((row) => keys.map((key) => cell(row[key])).join(","))].join("\n") + "\n";
}

/** Live updates of the open run: new rows, pictures and checkpoints, without reloading. */
function listen(id, from) {
  if (page.events) page.events.close();
  const events = new EventSource(`/api/events?${query({ run: id, from })}`);
  page.events = events;
  events.addEventListener("metrics", (event) => {
    const rows = JSON.parse(event.data).rows;
    page.metrics.add(rows);
    const last = rows.filter((row) => row.kind !== "eval" && typeof row.step === "number").pop();
    if (last && page.details) {
      page.details.summary.step = Math.max(page.details.summary.step ?? 0, last.step);
      if (typeof last.images_seen === "number") page.details.summary.imagesSeen = last.images_seen;
      renderSummary();
    }
    page.lastUpdate = Date.now();
    renderLiveness();
    drawCharts();
  });
  events.addEventListener("reset", (event) => {
    page.metrics = new Metrics();
    page.metrics.add(JSON.parse(event.data).rows);
    drawCharts();
  });
  events.addEventListener("pictures", (event) => setPictures(JSON.parse(event.data)));
  events.addEventListener("checkpoints", async () => {
    const details = await api(`/api/run?${query({ run: id })}`);
    if (page.run !== id) return;
    const step = Math.max(page.details.summary.step ?? 0, details.summary.step ?? 0);
    page.details.summary = { ...details.summary, step };
    renderSummary();
    renderLiveness();
    setCheckpoints(details.checkpoints, details.summary.classCount, true);
  });
}

setInterval(renderLiveness, 5000);

// ---- Sample grids and attention pictures on a step slider ---------------------------------------

function setPictures(pictures) {
  page.pictures = pictures;
  const slider = $("sample-slider");
  const atEnd = +slider.value >= +slider.max;
  slider.max = String(Math.max(0, pictures.samples.length - 1));
  if (atEnd || page.followLatest) slider.value = slider.max;
  showPictures();
}

function showPictures() {
  const { samples, attention } = page.pictures;
  const index = +$("sample-slider").value;
  page.followLatest = index >= samples.length - 1;
  $("no-samples").hidden = samples.length > 0;
  $("sample-controls").hidden = samples.length === 0;
  $("sample-pictures").hidden = samples.length === 0;
  if (samples.length === 0) return;
  const step = samples[Math.min(index, samples.length - 1)];
  $("sample-step").textContent = `step ${format(step)}`;
  const file = (name) => `/api/file?${query({ run: page.run, path: name })}`;
  $("sample-image").src = file(`samples/step-${String(step).padStart(6, "0")}.png`);
  $("sample-image").dataset.step = String(step);
  const shown = attention.filter((s) => s <= step).pop();
  $("attention-image").hidden = shown === undefined;
  $("attention-caption").hidden = shown === undefined;
  if (shown !== undefined) {
    $("attention-image").src = file(`samples/attention-step-${String(shown).padStart(6, "0")}.png`);
    $("attention-caption").textContent = `attention of G's first layer, step ${format(shown)}`;
  }
}

// ---- Generator playground -----------------------------------------------------------------------

function setCheckpoints(checkpoints, classCount, keepChoice = false) {
  $("no-checkpoints").hidden = checkpoints.length > 0;
  $("playground-body").hidden = checkpoints.length === 0;
  const select = $("checkpoint");
  const previous = select.value;
  select.innerHTML = "";
  for (const checkpoint of checkpoints) {
    const option = document.createElement("option");
    option.value = checkpoint.file;
    const name = checkpoint.file === "best.safetensors" ? "best" : "step";
    option.textContent = `${name} ${format(checkpoint.step ?? 0)}`;
    option.dataset.ema = String(checkpoint.hasEMA);
    option.dataset.step = String(checkpoint.step ?? 0);
    option.dataset.discriminator = String(checkpoint.hasDiscriminator);
    select.appendChild(option);
  }
  // A live run follows its newest checkpoint, unless the user chose one (pinned it).
  const newest = [...select.options].filter((option) => option.value !== "best.safetensors")
    .sort((a, b) => +b.dataset.step - +a.dataset.step)[0];
  if (keepChoice && page.checkpointPinned && [...select.options].some((option) => option.value === previous)) {
    select.value = previous;
  } else if (newest) {
    select.value = newest.value;
  }
  $("checkpoint-follow").textContent = page.checkpointPinned ? "pinned" : "following the newest";
  $("class-label").hidden = !(classCount > 0);
  $("class").innerHTML = "";
  for (let index = 0; index < classCount; index += 1) {
    const option = document.createElement("option");
    option.value = String(index);
    option.textContent = String(index);
    $("class").appendChild(option);
  }
  if (!keepChoice || previous !== select.value) checkpointChanged();
}

function checkpointChanged() {
  const option = $("checkpoint").selectedOptions[0];
  const hasEMA = option?.dataset.ema === "true";
  $("ema-choice").disabled = !hasEMA;
  $("ema-label").title = hasEMA ? "the moving average of G's weights" : "this checkpoint has no G-EMA: train with --ema";
  $("ema-label").classList.toggle("disabled-note", !hasEMA);
  if (!hasEMA) document.querySelector('input[name="network"][value="0"]').checked = true;
  const hasD = option?.dataset.discriminator === "true";
  for (const choice of $("attention-net").options) choice.disabled = choice.value !== "G" && !hasD;
  if (!hasD) $("attention-net").value = "G";
  generate();
}

/** The playground's current choices, as query parameters. */
function modelParameters() {
  return {
    run: page.run, checkpoint: $("checkpoint").value,
    ema: document.querySelector('input[name="network"]:checked').value,
    truncation: $("truncate").checked ? $("truncation").value : null,
    class: $("class-label").hidden ? null : $("class").value,
  };
}

/**
 * The playground's state: `shown` is what the image on screen was made from (the attention maps
 * always describe it, whatever the fields say meanwhile); `upload` is set while D judges an upload.
 */
const playground = { upload: null, pinned: null, imageSide: 0, pending: false, next: null, shown: null };

/** A seed field's value, or null with the error shown beside it. */
function seedField(id) {
  const text = $(id).value.trim();
  const seed = Number(text);
  const valid = text !== "" && Number.isInteger(seed) && seed >= 0 && seed <= 2147483647;
  const error = $(id === "seed" ? "seed-error" : "strip-error");
  error.textContent = valid ? "" : `${id === "seed" ? "seed" : "interpolate to seed"}: a whole number from 0 `
    + "to 2147483647, please";
  error.hidden = valid;
  if (!valid) error.scrollIntoView({ block: "nearest" });
  return valid ? seed : null;
}

async function generate() {
  if (!$("checkpoint").value) {
    $("generated-caption").textContent = "no checkpoints yet";
    return;
  }
  const seed = seedField("seed");
  if (seed === null) return;
  // A new image leaves upload mode: D now judges the generated image.
  if ($("attention-net").value === "upload") {
    $("attention-net").value = "D";
    $("upload").hidden = true;
  }
  playground.upload = null;
  const parameters = { ...modelParameters(), seed };
  const started = performance.now();
  $("generated-caption").textContent = `drawing seed ${seed}…`;
  try {
    const url = await apiImage(`/api/generate?${query(parameters)}`);
    playground.shown = parameters;
    setGenerated(url, `seed ${seed} · ${Math.round(performance.now() - started)} ms`, `seed-${seed}.png`);
  } catch (error) {
    $("generated-caption").textContent = error.message;
  }
}

function setGenerated(url, caption, fileName) {
  const image = $("generated");
  image.onload = () => {
    playground.imageSide = image.naturalWidth;
    image.dataset.ready = "true";
    refreshAttention();
  };
  image.dataset.ready = "false";
  image.src = url;
  $("generated-caption").textContent = caption;
  $("download-generated").href = url;
  $("download-generated").download = fileName;
  $("download-generated").hidden = false;
}

/**
 * Shows a picture the playground made (the strip, the grid) at a whole multiple of its size, its
 * shape kept; on failure the error goes beside the button that asked, and the old picture goes.
 */
async function showMade(name, path, fileName, scaleTo) {
  const [image, link, error] = [$(name), $(`download-${name}`), $(`${name}-error`)];
  const button = $(name === "strip" ? "interpolate" : "make-grid");
  error.hidden = true;
  button.disabled = true;
  button.dataset.label ??= button.textContent;
  button.textContent = "drawing…";
  try {
    const url = await apiImage(path);
    image.onload = () => {
      const scale = Math.max(1, Math.floor(scaleTo / image.naturalHeight));
      image.style.width = `${image.naturalWidth * scale}px`;
    };
    image.src = url;
    image.hidden = false;
    Object.assign(link, { href: url, hidden: false, download: fileName });
  } catch (failure) {
    showMadeError(name, failure.message);
  } finally {
    button.disabled = false;
    button.textContent = button.dataset.label;
  }
}

/** The error of the strip or the grid, beside its button, in view; the old picture goes. */
function showMadeError(name, message) {
  $(name).hidden = true;
  $(`download-${name}`).hidden = true;
  const error = $(`${name}-error`);
  error.textContent = message;
  error.hidden = false;
  error.scrollIntoView({ block: "nearest" });
}

async function interpolate() {
  const [from, to] = [seedField("seed"), seedField("seed-b")];
  if (from === null || to === null) return;
  const count = Number($("strip-count").value);
  if (!Number.isInteger(count) || count < 2 || count > 16) {
    return showMadeError("strip", "images: a whole number from 2 to 16, please");
  }
  const parameters = { ...modelParameters(), from, to, count };
  await showMade("strip", `/api/interpolate?${query(parameters)}`, `interpolation-${from}-${to}.png`, 128);
}

async function makeGrid() {
  const seed = seedField("seed");
  if (seed === null) return;
  await showMade("grid", `/api/grid?${query({ ...modelParameters(), seed, count: 16 })}`, `grid-${seed}.png`, 384);
}

// ---- Attention explorer -------------------------------------------------------------------------

/** The image pixel under a mouse event on the generated image. */
function pixelAt(event) {
  const box = $("generated").getBoundingClientRect();
  const side = playground.imageSide || 1;
  const x = Math.floor((event.clientX - box.left) / box.width * side);
  const y = Math.floor((event.clientY - box.top) / box.height * side);
  return { x: Math.max(0, Math.min(side - 1, x)), y: Math.max(0, Math.min(side - 1, y)) };
}

function refreshAttention() {
  const point = playground.pinned || { x: playground.imageSide >> 1, y: playground.imageSide >> 1 };
  requestAttention(point);
}

/** Asks for the maps of `point`; while one request runs, only the latest point waits. */
async function requestAttention(point) {
  if (playground.pending) {
    playground.next = point;
    return;
  }
  playground.pending = true;
  $("attention-loading").hidden = false;
  drawMarker(point);
  const net = $("attention-net").value;
  const upload = net === "upload" ? playground.upload : null;
  // The maps describe the image on screen: its own parameters, not the fields' current values.
  const parameters = { ...(playground.shown ?? modelParameters()), x: point.x, y: point.y,
    net: net === "upload" ? "D" : net, upload };
  if (upload) delete parameters.seed;
  try {
    if (net === "upload" && !playground.upload) throw new Error("choose an image to upload");
    if (net !== "upload" && !playground.shown) throw new Error("no generated image yet");
    const answer = await api(`/api/attention?${query(parameters)}`);
    drawMaps(answer);
    $("attention-error").hidden = true;
  } catch (error) {
    $("attention-error").textContent = error.message;
    $("attention-error").hidden = false;
  }
  playground.pending = false;
  $("attention-loading").hidden = true;
  if (playground.next) {
    const next = playground.next;
    playground.next = null;
    requestAttention(next);
  }
}

function drawMarker(point) {
  const canvas = $("query-marker");
  const side = playground.imageSide || 1;
  const scale = 8;
  canvas.width = side * scale;
  canvas.height = side * scale;
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  const cx = (point.x + 0.5) * scale;
  const cy = (point.y + 0.5) * scale;
  context.lineWidth = 3;
  context.strokeStyle = "black";
  context.strokeRect(cx - 10, cy - 10, 20, 20);
  context.lineWidth = 1.5;
  context.strokeStyle = playground.pinned ? "#ff3b30" : "white";
  context.strokeRect(cx - 10, cy - 10, 20, 20);
}

/**
 * The colour scale every map on screen shares: attention in multiples of uniform (1× = every key
 * weighted alike), on a log scale from 1× (no colour) to `top`×, the largest value shown rounded
 * up to a power of two. A nearly uniform map therefore stays pale beside a sharp one.
 */
function attentionScale(layers) {
  const largest = Math.max(2, ...layers.map((layer) => Math.max(...layer.map) * layer.map.length));
  const top = Math.pow(2, Math.ceil(Math.log2(largest)));
  return { top, weight: (multiple) => (multiple <= 1 ? 0 : Math.min(1, Math.log2(multiple) / Math.log2(top))) };
}

/** One canvas per layer: the image in grey under the query's map, as SAGAN's figures draw it. */
function drawMaps(answer) {
  const container = $("attention-maps");
  container.innerHTML = "";
  const image = $("generated");
  const side = answer.resolution;
  const source = document.createElement("canvas");
  source.width = side;
  source.height = side;
  const sourceContext = source.getContext("2d");
  sourceContext.drawImage(image, 0, 0, side, side);
  const pixels = sourceContext.getImageData(0, 0, side, side).data;
  const scale = attentionScale(answer.layers);
  drawColourBar(scale);
  const layerChoice = $("overlay-layer");
  const chosen = layerChoice.value;
  layerChoice.innerHTML = "";
  for (const layer of answer.layers) {
    const keys = layer.map.length;
    const weightAt = (x, y) => scale.weight(keys * layer.map[Math.floor(y * layer.keySide / side) * layer.keySide
      + Math.floor(x * layer.keySide / side)]);
    const canvas = document.createElement("canvas");
    canvas.width = side;
    canvas.height = side;
    const context = canvas.getContext("2d");
    const output = context.createImageData(side, side);
    for (let y = 0; y < side; y += 1) {
      for (let x = 0; x < side; x += 1) {
        const at = (y * side + x) * 4;
        const weight = weightAt(x, y);
        const grey = 0.45 * (0.299 * pixels[at] + 0.587 * pixels[at + 1] + 0.114 * pixels[at + 2]);
        const heat = heatColour(weight);
        for (let c = 0; c < 3; c += 1) output.data[at + c] = (1 - 0.85 * weight) * grey + 0.85 * weight * heat[c];
        output.data[at + 3] = 255;
      }
    }
    context.putImageData(output, 0, 0);
    context.fillStyle = "#00e5ff";
    context.fillRect(answer.x, answer.y, 1, 1);
    canvas.dataset.layer = layer.name;
    canvas.dataset.query = `${answer.x},${answer.y}`;
    canvas.dataset.peak = String(layer.map.indexOf(Math.max(...layer.map)));
    const figure = document.createElement("figure");
    figure.appendChild(canvas);
    const caption = document.createElement("figcaption");
    const contrast = Math.max(...layer.map) * keys;
    caption.textContent = `${layer.name} · γ ${format(layer.gamma, 3)} · keys ${layer.keySide}×${layer.keySide}`
      + ` · peak ${contrast.toFixed(1)}× uniform`;
    figure.appendChild(caption);
    container.appendChild(figure);
    const option = document.createElement("option");
    option.value = layer.name;
    option.textContent = layer.name;
    layerChoice.appendChild(option);
    layer.weightAt = weightAt;
  }
  if ([...layerChoice.options].some((option) => option.value === chosen)) layerChoice.value = chosen;
  playground.overlay = { answer, side };
  drawOverlay();
}

/** The chosen layer's map alone, over the image itself (narrow screens, where maps beside it do not fit). */
function drawOverlay() {
  const canvas = $("attention-overlay");
  const state = playground.overlay;
  if (!state) return;
  const { answer, side } = state;
  const layer = answer.layers.find((candidate) => candidate.name === $("overlay-layer").value) ?? answer.layers[0];
  canvas.width = side;
  canvas.height = side;
  const context = canvas.getContext("2d");
  const output = context.createImageData(side, side);
  for (let y = 0; y < side; y += 1) {
    for (let x = 0; x < side; x += 1) {
      const weight = layer ? layer.weightAt(x, y) : 0;
      const heat = heatColour(weight);
      const at = (y * side + x) * 4;
      for (let c = 0; c < 3; c += 1) output.data[at + c] = heat[c];
      output.data[at + 3] = 255 * Math.min(1, weight * 1.2);
    }
  }
  context.putImageData(output, 0, 0);
  canvas.style.opacity = String($("overlay-opacity").value);
  canvas.dataset.layer = layer?.name ?? "";
}

/** The shared scale's colour bar, labelled at 1×, 2×, 4×, … uniform. */
function drawColourBar(scale) {
  const bar = $("colour-bar");
  const context = bar.getContext("2d");
  bar.width = 256;
  bar.height = 10;
  for (let x = 0; x < bar.width; x += 1) {
    const heat = heatColour(x / (bar.width - 1));
    context.fillStyle = `rgb(${heat.map(Math.round).join(",")})`;
    context.fillRect(x, 0, 1, bar.height);
  }
  const labels = $("colour-bar-labels");
  labels.innerHTML = "";
  const count = Math.log2(scale.top);
  for (let power = 0; power <= count; power += Math.max(1, Math.ceil(count / 5))) {
    const label = document.createElement("span");
    label.textContent = `${Math.pow(2, power)}×`;
    label.style.left = `${(power / count) * 100}%`;
    labels.appendChild(label);
  }
  $("colour-scale").hidden = false;
  $("colour-scale").dataset.top = String(scale.top);
}

/** Black-body colours: dark red to yellow to white as the weight grows. */
function heatColour(weight) {
  const w = Math.max(0, Math.min(1, weight));
  return [255 * Math.min(1, w * 2.2), 255 * Math.max(0, Math.min(1, w * 2.2 - 0.7)), 255 * Math.max(0, w * 3 - 2)];
}

async function uploadImage(file) {
  try {
    const answer = await api(`/api/upload?${query({ run: page.run, checkpoint: $("checkpoint").value })}`,
      { method: "POST", body: file });
    playground.upload = answer.id;
    playground.pinned = null;
    setGenerated(`data:image/png;base64,${answer.png}`, `${file.name} as D sees it`, "upload.png");
    $("attention-error").hidden = true;
  } catch (error) {
    $("attention-error").textContent = error.message;
    $("attention-error").hidden = false;
  }
}

// ---- Wiring -------------------------------------------------------------------------------------

function route() {
  clearInterval(runsTimer);
  if (page.events) {
    page.events.close();
    page.events = null;
  }
  const match = location.hash.match(/^#\/run\/([^?]*)(?:\?overlay=(.*))?$/);
  if (match) {
    const overlays = (match[2] || "").split(",").filter(Boolean).map(decodeURIComponent);
    showRun(decodeURIComponent(match[1]), overlays);
  } else {
    showRuns();
  }
}

function wire() {
  $("smoothing").addEventListener("input", () => {
    $("smoothing-value").textContent = (+$("smoothing").value).toFixed(2);
    drawCharts();
  });
  $("reset-zoom").addEventListener("click", () => { page.zoom = null; drawCharts(); });
  $("overlay").addEventListener("change", async () => {
    await loadOverlays([...$("overlay").selectedOptions].map((option) => option.value));
    drawCharts();
  });
  $("sample-slider").addEventListener("input", showPictures);
  $("checkpoint").addEventListener("change", () => {
    const newest = [...$("checkpoint").options].filter((option) => option.value !== "best.safetensors")
      .sort((a, b) => +b.dataset.step - +a.dataset.step)[0];
    page.checkpointPinned = $("checkpoint").value !== newest?.value;
    $("checkpoint-follow").textContent = page.checkpointPinned ? "pinned" : "following the newest";
    checkpointChanged();
  });
  for (const choice of document.querySelectorAll('input[name="network"]')) choice.addEventListener("change", generate);
  $("seed").addEventListener("change", generate);
  $("random-seed").addEventListener("click", () => {
    $("seed").value = String(Math.floor(Math.random() * 2147483647));
    generate();
  });
  $("truncate").addEventListener("change", () => {
    $("truncation").disabled = !$("truncate").checked;
    $("truncation-value").textContent = $("truncate").checked ? $("truncation").value : "off";
    generate();
  });
  $("truncation").addEventListener("change", () => {
    $("truncation-value").textContent = $("truncation").value;
    generate();
  });
  $("class").addEventListener("change", generate);
  $("interpolate").addEventListener("click", interpolate);
  $("make-grid").addEventListener("click", makeGrid);
  $("attention-net").addEventListener("change", () => {
    const upload = $("attention-net").value === "upload";
    $("upload").hidden = !upload;
    if (upload) {
      $("upload").click();
    } else {
      playground.upload = null;
      generate();
    }
  });
  $("upload").addEventListener("change", () => {
    if ($("upload").files[0]) uploadImage($("upload").files[0]);
  });
  // Arrow keys step the seed by one (the field does) and draw at once.
  $("seed").addEventListener("keyup", (event) => {
    if (event.key === "ArrowUp" || event.key === "ArrowDown") generate();
  });
  const stack = $("generated-stack");
  // Arrow keys move the (pinned) query point by a pixel.
  stack.addEventListener("keydown", (event) => {
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    const move = moves[event.key];
    if (!move || !playground.imageSide) return;
    event.preventDefault();
    const side = playground.imageSide;
    const from = playground.pinned || { x: side >> 1, y: side >> 1 };
    playground.pinned = {
      x: Math.max(0, Math.min(side - 1, from.x + move[0])), y: Math.max(0, Math.min(side - 1, from.y + move[1])),
    };
    requestAttention(playground.pinned);
  });
  stack.addEventListener("mousemove", (event) => {
    if (!playground.pinned && playground.imageSide) requestAttention(pixelAt(event));
  });
  stack.addEventListener("click", (event) => {
    if (!playground.imageSide) return;
    const point = pixelAt(event);
    const same = playground.pinned && playground.pinned.x === point.x && playground.pinned.y === point.y;
    playground.pinned = same ? null : point;
    requestAttention(point);
  });
  $("overlay-layer").addEventListener("change", drawOverlay);
  $("log-scale").addEventListener("change", drawCharts);
  $("download-metrics").addEventListener("click", () => {
    const link = $("download-metrics");
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(new Blob([metricsCSV(page.metrics)], { type: "text/csv" }));
    link.download = `${page.details?.summary.name ?? "run"}-metrics.csv`;
  });
  for (const button of document.querySelectorAll("nav.sections button")) {
    button.addEventListener("click", () => $(button.dataset.section).scrollIntoView({ behavior: "smooth" }));
  }
  $("overlay-opacity").addEventListener("input", drawOverlay);
  window.addEventListener("hashchange", route);
  api("/api/evaluation-metrics")
    .then((list) => { evaluationCharts = list; })
    .catch(() => {})
    .finally(route);
}

wire();
