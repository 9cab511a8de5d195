// sagan studio: the page's wiring: events, keyboard and routes. Loaded last (see index.html).
"use strict";

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
    page.checkpointPinned = $("checkpoint").value !== newestCheckpoint()?.value;
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
