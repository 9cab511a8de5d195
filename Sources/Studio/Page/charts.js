// sagan studio: a run's logged rows as series, and the SVG charts that draw them.
"use strict";

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
