// sagan studio: the attention explorer: maps for a query pixel, one colour scale, the overlay.
"use strict";

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
    // The image in grey under the map's heat colour.
    const context = paint(canvas, side, weightAt, (at, weight, heat) => {
      const grey = 0.45 * (0.299 * pixels[at] + 0.587 * pixels[at + 1] + 0.114 * pixels[at + 2]);
      return [...heat.map((value) => (1 - 0.85 * weight) * grey + 0.85 * weight * value), 255];
    });
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

/**
 * Fills `canvas` (side × side) pixel by pixel: `colour(at, weight, heat)` gives the RGBA of the pixel at
 * byte offset `at` from its map weight and that weight's heat colour. Returns the canvas's context.
 */
function paint(canvas, side, weightAt, colour) {
  canvas.width = side;
  canvas.height = side;
  const context = canvas.getContext("2d");
  const output = context.createImageData(side, side);
  for (let y = 0; y < side; y += 1) {
    for (let x = 0; x < side; x += 1) {
      const at = (y * side + x) * 4;
      const weight = weightAt(x, y);
      output.data.set(colour(at, weight, heatColour(weight)), at);
    }
  }
  context.putImageData(output, 0, 0);
  return context;
}

/** The chosen layer's map alone, over the image itself (narrow screens, where maps beside it do not fit). */
function drawOverlay() {
  const canvas = $("attention-overlay");
  const state = playground.overlay;
  if (!state) return;
  const { answer, side } = state;
  const layer = answer.layers.find((candidate) => candidate.name === $("overlay-layer").value) ?? answer.layers[0];
  // The heat colour alone, as opaque as the weight is strong.
  paint(canvas, side, (x, y) => (layer ? layer.weightAt(x, y) : 0),
    (at, weight, heat) => [...heat, 255 * Math.min(1, weight * 1.2)]);
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
