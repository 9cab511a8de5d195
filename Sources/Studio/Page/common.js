// sagan studio's page, in seven scripts loaded in order (index.html): this one's helpers, then
// charts, runs, run, playground, attention and studio (the wiring). No libraries: charts are SVG
// drawn here, maps are canvas pixels. Top-level names are shared between the scripts.
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
