// sagan studio: a run's page: its summary, curves, live updates, sample grids and attention pictures.
"use strict";

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
