// The estimate page: search the types, click the map for a place, ask the API, echo an image.
"use strict";

const $ = (id) => document.getElementById(id);

function apiHeaders(extra) {
  const headers = { Accept: "application/json", ...extra };
  const key = $("api-key").value.trim();
  if (key) headers["x-api-key"] = key;
  return headers;
}

async function callApi(url, options) {
  const response = await fetch(url, { ...options, headers: apiHeaders(options && options.headers) });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new Error(`the service answered ${response.status} ${response.statusText}, not JSON`);
  }
  if (!response.ok || body.success === false) {
    throw new Error(body.problem || `the service answered ${response.status}`);
  }
  return body;
}

function hours(value) {
  if (value >= 48) return `${(value / 24).toFixed(1)} days (${value.toFixed(1)} hours)`;
  if (value >= 1) return `${value.toFixed(1)} hours`;
  return `${Math.round(value * 60)} minutes`;
}

// --- complaint types: a select narrowed by what is typed -------------------------------------------

function filterTypes() {
  const wanted = $("type-filter").value.trim().toLowerCase();
  const select = $("complaint-type");
  let first = null;
  for (const option of select.options) {
    option.hidden = wanted !== "" && !option.value.includes(wanted);
    if (!option.hidden && first === null) first = option;
  }
  if (select.selectedOptions.length === 0 || select.selectedOptions[0].hidden) {
    select.value = first ? first.value : "";
  }
}

// --- the map: the SVG's own coordinates are grid cells of the drawing ------------------------------

function placeMarker(lat, lon) {
  const map = $("map");
  const x = (lon - Number(map.dataset.west)) / Number(map.dataset.cellLon);
  const y = (Number(map.dataset.north) - lat) / Number(map.dataset.cellLat);
  $("marker").setAttribute("cx", x.toFixed(2));
  $("marker").setAttribute("cy", y.toFixed(2));
}

function clickMap(event) {
  const map = $("map");
  const point = map.createSVGPoint();
  point.x = event.clientX;
  point.y = event.clientY;
  const inMap = point.matrixTransform(map.getScreenCTM().inverse());
  const lon = Number(map.dataset.west) + inMap.x * Number(map.dataset.cellLon);
  const lat = Number(map.dataset.north) - inMap.y * Number(map.dataset.cellLat);
  $("lat").value = lat.toFixed(6);
  $("lon").value = lon.toFixed(6);
  placeMarker(lat, lon);
}

function typedCoordinates() {
  const lat = Number($("lat").value);
  const lon = Number($("lon").value);
  if ($("lat").value && $("lon").value && Number.isFinite(lat) && Number.isFinite(lon)) placeMarker(lat, lon);
}

// --- the estimate --------------------------------------------------------------------------------

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

async function estimate(event) {
  event.preventDefault();
  $("error").hidden = true;
  const type = $("complaint-type").value;
  if (!type) return showError("Pick a complaint type first.");
  if (!$("lat").value || !$("lon").value) return showError("Click the map to choose a place first.");
  const date = $("when").value.replace("T", " ") + (($("when").value.length === 16) ? ":00" : "");
  const query = new URLSearchParams({ lat: $("lat").value, lon: $("lon").value, date });
  const path = `/predict/${encodeURIComponent(type)}`;
  $("result").classList.add("busy");
  try {
    const [model, median] = await Promise.all([callApi(`${path}?${query}`), callApi(path)]);
    $("estimate").textContent = hours(model.estimated_time);
    $("interval").textContent = `${hours(model.interval.low)} to ${hours(model.interval.high)}`;
    $("median").textContent = `${hours(median.estimated_time)} (${median.model_version})`;
    $("version").textContent = model.model_version;
    $("notes").textContent = model.fallbacks.length ? `Fallbacks: ${model.fallbacks.join(", ")}` : "";
    $("result").dataset.hours = String(model.estimated_time);
  } catch (error) {
    showError(error.message);
  } finally {
    $("result").classList.remove("busy");
  }
}

// --- echo an image -------------------------------------------------------------------------------

function readAsBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result.slice(reader.result.indexOf(",") + 1));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function echoImage() {
  const file = $("echo-file").files[0];
  const status = $("echo-status");
  status.textContent = "Sending…";
  try {
    const sent = await readAsBase64(file);
    const reply = await callApi("/echo", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ msg: sent, encoding: "base64" }),
    });
    const back = Uint8Array.from(atob(reply.response), (c) => c.charCodeAt(0));
    const original = new Uint8Array(await file.arrayBuffer());
    const same = back.length === original.length && back.every((b, i) => b === original[i]);
    const digest = await sha256Hex(back);
    status.textContent = `${original.length} bytes sent, ${back.length} bytes back: ${same ? "identical" : "DIFFERENT"}. SHA-256 of what came back: ${digest}`;
    status.dataset.sha256 = digest;
    $("echo-image").src = `data:${file.type || "application/octet-stream"};base64,${reply.response}`;
    $("echo-image").hidden = false;
  } catch (error) {
    status.textContent = `Echo failed: ${error.message}`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("type-filter").addEventListener("input", filterTypes);
  $("type-filter").addEventListener("keydown", (event) => {
    if (event.key === "Enter") event.preventDefault(); // Enter keeps the first match rather than submitting
  });
  $("map").addEventListener("click", clickMap);
  $("lat").addEventListener("change", typedCoordinates);
  $("lon").addEventListener("change", typedCoordinates);
  $("estimate-form").addEventListener("submit", estimate);
  $("echo-file").addEventListener("change", () => {
    $("echo-send").disabled = $("echo-file").files.length === 0;
  });
  $("echo-send").addEventListener("click", echoImage);
  document.body.dataset.ready = "yes";
});
