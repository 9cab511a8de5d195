// sagan studio: the generator playground: checkpoints, seeds, the strip and the grid.
"use strict";

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
  const newest = newestCheckpoint();
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

/** The option of the latest step's checkpoint ("best" is not a step). */
function newestCheckpoint() {
  return [...$("checkpoint").options].filter((option) => option.value !== "best.safetensors")
    .sort((a, b) => +b.dataset.step - +a.dataset.step)[0];
}

function checkpointChanged() {
  const option = $("checkpoint").selectedOptions[0];
  const hasEMA = option?.dataset.ema === "true";
  $("ema-choice").disabled = !hasEMA;
  $("ema-label").title = hasEMA
    ? "the moving average of G's weights" : "this checkpoint has no G-EMA: train with --ema";
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
