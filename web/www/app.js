// The page around the WebAssembly module: downloads with progress, inputs (file, drop, paste,
// gallery, webcam), drawing, the results table, and the educator panel. Every URL is relative,
// so the app works from any static host under any path prefix, and nothing leaves the origin.

// Paths below assets/, where web/postbuild.mjs lists each file's sha256 in manifest.json.
const MODEL = "utkface-allages-faceres.fmtl";
const REPORT = "utkface-allages-faceres.report.json";
const WEIGHTS = { detector: "weights/blazeface.bpk", faceres: "weights/faceres.fmh" };
const SAMPLES = [1, 2, 3, 4, 5, 6].map((i) => `samples/sample${i}.jpg`);
const CACHE = "facemtl-assets";
// Where the Cache API keeps the manifest of the last visit.
const MANIFEST_KEY = "assets/manifest.json?kept";
const MAX_BYTES = 40 * 1000 * 1000;
// iOS Safari draws no canvas over 16.7 megapixels (4096 x 4096); larger photos are shown
// scaled down (the prediction itself reads every pixel).
const MAX_CANVAS_PIXELS = 4096 * 4096;

const $ = (id) => document.getElementById(id);
const state = { app: null, header: null, last: null, lastName: "", webcam: null, manifest: null };

function showError(message) {
  const el = $("error");
  el.textContent = message;
  el.hidden = !message;
}

function showNotice(message) {
  const el = $("notice");
  el.textContent = message;
  el.hidden = !message;
}

// The asset's URL, named by its content: a redeploy that changes the file changes the URL,
// which keys the Cache API store (and defeats any stale HTTP cache on the way).
function assetUrl(path, manifest = state.manifest) {
  const hash = manifest?.[path];
  if (!hash) throw new Error(`${path} is not in the app's asset manifest`);
  return `assets/${path}?sha256=${hash}`;
}

async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// Fetch an asset with a progress bar, check it against its sha256, and keep it in the Cache
// API (where the page is a secure context) so that a second visit downloads nothing.
async function download(manifest, path, label, parent = $("downloads")) {
  const url = assetUrl(path, manifest);
  const row = document.createElement("div");
  row.className = "download";
  row.innerHTML = `<span>${label}</span> <progress max="1" value="0"></progress> <span class="size"></span>`;
  parent.append(row);
  const bar = row.querySelector("progress");
  const size = row.querySelector(".size");
  const cache = self.caches ? await caches.open(CACHE).catch(() => null) : null;
  let response = cache ? await cache.match(url) : null;
  const cached = !!response;
  if (!response) {
    response = await fetch(url);
    if (!response.ok) throw new Error(`could not download ${label} (${path}: HTTP ${response.status})`);
  }
  // A compressed response's content-length counts compressed bytes, while the reader yields
  // decoded ones: web/serve.mjs states the decoded length; elsewhere the bar is indeterminate.
  const headers = response.headers;
  const total = Number(headers.get("x-decoded-length") || (headers.get("content-encoding") ? 0 : headers.get("content-length")));
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    if (total) bar.value = Math.min(received / total, 1);
    else bar.removeAttribute("value");
    size.textContent = `${(received / 1e6).toFixed(1)} MB`;
  }
  bar.value = 1;
  size.textContent = `${(received / 1e6).toFixed(1)} MB${cached ? " (cached)" : ""}`;
  const bytes = new Uint8Array(received);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  if (self.crypto?.subtle && (await sha256Hex(bytes)) !== manifest[path]) {
    if (cache) await cache.delete(url);
    throw new Error(`${label} (${path}) arrived damaged: its sha256 does not match the app's manifest`);
  }
  if (cache && !cached) await cache.put(url, new Response(bytes, { headers: { "x-decoded-length": String(received) } })).catch(() => {});
  return bytes;
}

async function fetchManifest() {
  const response = await fetch("assets/manifest.json", { cache: "no-cache" });
  if (!response.ok) throw new Error(`could not download the asset manifest (HTTP ${response.status})`);
  return response.json();
}

// The manifest of the last visit whose files are all in the Cache API, or null.
async function keptManifest() {
  const cache = self.caches ? await caches.open(CACHE).catch(() => null) : null;
  const response = cache && (await cache.match(MANIFEST_KEY));
  if (!response) return null;
  const manifest = await response.json().catch(() => null);
  const needed = [WEIGHTS.detector, WEIGHTS.faceres, MODEL];
  if (!manifest || !needed.every((path) => manifest[path])) return null;
  for (const path of needed) if (!(await cache.match(`assets/${path}?sha256=${manifest[path]}`))) return null;
  return manifest;
}

async function keepManifest(manifest) {
  const cache = self.caches ? await caches.open(CACHE).catch(() => null) : null;
  await cache?.put(MANIFEST_KEY, new Response(JSON.stringify(manifest))).catch(() => {});
}

async function loadNetworks(manifest, only = null) {
  const wanted = (path) => !only || only.includes(path);
  const [detector, backbone, model] = await Promise.all([
    wanted(WEIGHTS.detector) && download(manifest, WEIGHTS.detector, "face detector"),
    wanted(WEIGHTS.faceres) && download(manifest, WEIGHTS.faceres, "face backbone"),
    wanted(MODEL) && download(manifest, MODEL, "multi-task model"),
  ]);
  if (detector) state.app.load_detector(detector);
  if (backbone) state.app.load_backbone("faceres", backbone);
  // A model is built around the detector and backbone loaded before it.
  useModel(model || (await download(manifest, MODEL, "multi-task model")));
  state.appHeader = state.header;
}

// After a redeploy: the networks whose files changed, downloaded and swapped in.
async function updateFrom(manifest) {
  const changed = [WEIGHTS.detector, WEIGHTS.faceres, MODEL].filter((path) => manifest[path] !== state.manifest[path]);
  const old = state.manifest;
  state.manifest = manifest;
  if (!changed.length) return;
  try {
    await loadNetworks(manifest, changed);
    showNotice("A newer version of the model was deployed: it is used from now on.");
  } catch (e) {
    state.manifest = old;
    showError(`A newer model could not be loaded (${e.message || e}); the one kept from your last visit is used.`);
  }
}

// Drop cached files that the deployed app no longer names (an older model, older weights).
async function pruneCache() {
  if (!self.caches) return;
  const cache = await caches.open(CACHE).catch(() => null);
  if (!cache) return;
  const wanted = new Set([...Object.keys(state.manifest).map((path) => assetUrl(path)), MANIFEST_KEY].map((url) => new URL(url, location.href).href));
  for (const request of await cache.keys()) if (!wanted.has(request.url)) await cache.delete(request);
  for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
}

function describeModel(header) {
  const metrics = header.metrics.map(([k, v]) => (k === "age_mae" ? `age MAE ${v.toFixed(2)} years` : `${k.replace("_accuracy", "")} ${(100 * v).toFixed(1)} %`));
  const tasks = header.tasks.map((t) => t.name).join(", ");
  const mirror = header.test_time_mirror ? " Each face is read with its mirror image (test-time mirror)." : "";
  const blocks = header.tuned_blocks > 1 ? `last ${header.tuned_blocks} backbone blocks were` : "last backbone block was";
  const tuned = header.tuned_blocks ? ` Its ${blocks} fine-tuned with it.` : "";
  $("model-info").textContent = `Model: ${header.backbone} backbone, tasks ${tasks}; trained on ${header.trained_on}; test: ${metrics.join(", ")}.${mirror}${tuned}`;
}

function useModel(bytes) {
  // Loading refuses a file whose format version or payload sha256 does not hold.
  state.header = JSON.parse(state.app.load_model(bytes));
  describeModel(state.header);
  drawArchitecture(state.header);
}

async function start() {
  const force = new URLSearchParams(location.search).get("backend");
  const badge = $("backend");
  try {
    state.app = await wasmBindings.App.create(force === "webgpu" || force === "cpu" ? force : null);
  } catch (e) {
    badge.dataset.state = "error";
    badge.textContent = `Could not start: ${e.message || e}`;
    return;
  }
  badge.dataset.state = state.app.backend;
  badge.textContent = state.app.backend === "webgpu" ? "Computing on: WebGPU" : "Computing on: CPU (WebAssembly)";
  // The deployment's manifest is always asked of the server, but a returning visitor does not
  // wait for it: the networks start from the manifest kept at the last visit, and a newer one,
  // when it arrives, swaps in what changed.
  const fresh = fetchManifest();
  fresh.catch(() => {}); // awaited below, where its error counts
  let kept = null;
  try {
    kept = await keptManifest();
    state.manifest = kept || (await fresh);
    await loadNetworks(state.manifest);
    document.body.dataset.assets = kept ? "kept" : "downloaded";
    document.body.dataset.ready = "true";
  } catch (e) {
    showError(`The model could not be loaded: ${e.message || e}. Reload the page to try again.`);
    return;
  }
  if (state.manifest === kept) await updateFrom(await fresh.catch(() => kept));
  await keepManifest(state.manifest);
  await pruneCache().catch(() => {});
  // The deployment's own files are in use, and the Cache API holds them and nothing else.
  document.body.dataset.current = "true";
  fetch(assetUrl(REPORT))
    .then((r) => (r.ok ? r.json() : null))
    .then((report) => report && drawReport(report))
    .catch(() => {});
}

// ---- inputs ----

async function predictFile(file) {
  showError("");
  showNotice("");
  if (file.size > MAX_BYTES) {
    showError(`${file.name} is ${(file.size / 1e6).toFixed(0)} MB; photos up to ${MAX_BYTES / 1e6} MB are accepted.`);
    return;
  }
  const bytes = new Uint8Array(await file.arrayBuffer());
  await predictBytes(bytes, file.name);
}

async function predictBytes(bytes, name) {
  if (!state.app || !state.header) {
    showError("The model is still loading.");
    return;
  }
  stopWebcam();
  state.lastBytes = bytes;
  let result;
  try {
    result = JSON.parse(await state.app.predict_photo(bytes));
  } catch (e) {
    showError(`${name}: ${e.message || e}`);
    return;
  }
  const url = URL.createObjectURL(new Blob([bytes]));
  const img = new Image();
  const display = (ctx) => {
    URL.revokeObjectURL(url);
    try {
      show(result, name, ctx);
    } catch (e) {
      showError(`${name}: the prediction could not be shown (${e.message || e})`);
    }
  };
  img.onload = () => {
    // The browser applies EXIF orientation like the decoder does.
    const canvas = $("canvas");
    const scale = Math.min(1, Math.sqrt(MAX_CANVAS_PIXELS / (result.width * result.height)));
    canvas.width = Math.floor(result.width * scale);
    canvas.height = Math.floor(result.height * scale);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    ctx.scale(canvas.width / result.width, canvas.height / result.height);
    display(ctx);
  };
  img.onerror = () => display(null);
  img.src = url;
}

function genderText(f) {
  if (f.female_probability === undefined) return "";
  const female = f.female_probability >= 0.5;
  const p = female ? f.female_probability : 1 - f.female_probability;
  return `${female ? "female" : "male"} ${(100 * p).toFixed(0)} %`;
}

function ageText(f) {
  if (f.age) return `${f.age.years.toFixed(0)} ± ${f.age.plus_minus.toFixed(0)}`;
  if (f.young_probability !== undefined) return f.young_probability >= 0.5 ? "young" : "old";
  return "";
}

// Predictions of a model's own tasks (a user's data set), beyond the built-in four.
const KNOWN = new Set(["score", "bbox", "keypoints", "female_probability", "age", "race", "young_probability"]);
function otherText(f) {
  return Object.entries(f)
    .filter(([k]) => !KNOWN.has(k))
    .map(([k, v]) => {
      if (!Array.isArray(v)) return `${k}: ${v.value.toFixed(1)} ± ${v.plus_minus.toFixed(1)}`;
      const [label, p] = [...v].sort((a, b) => b[1] - a[1])[0];
      return `${k}: ${label} ${(100 * p).toFixed(0)} %`;
    })
    .join(", ");
}

function raceText(f) {
  if (!f.race) return "";
  return [...f.race].sort((a, b) => b[1] - a[1]).map(([r, p]) => `${r} ${(100 * p).toFixed(0)} %`).join(", ");
}

function drawFaces(ctx, result) {
  const scale = Math.max(result.width, result.height) / 800;
  ctx.lineWidth = Math.max(2, 2 * scale);
  ctx.font = `${Math.max(12, 14 * scale)}px sans-serif`;
  result.faces.forEach((f, i) => {
    const b = f.bbox;
    ctx.strokeStyle = "#ffcc00";
    ctx.strokeRect(b.x_min, b.y_min, b.x_max - b.x_min, b.y_max - b.y_min);
    const top = raceText(f).split(",")[0];
    const label = `${i + 1}: ${genderText(f)}, ${ageText(f)}${top ? ", " + top : ""}`;
    const w = ctx.measureText(label).width + 6;
    const h = Math.max(16, 18 * scale);
    // Keep the label inside the picture, also for faces at its right edge.
    const x = Math.max(0, Math.min(b.x_min, result.width - w));
    ctx.fillStyle = "rgba(0,0,0,0.7)";
    ctx.fillRect(x, Math.max(0, b.y_min - h), w, h);
    ctx.fillStyle = "#fff";
    ctx.fillText(label, x + 3, Math.max(h - 4, b.y_min - 4));
  });
}

// The latest prediction, for "Download JSON" (and the tests, as window.facemtlLast).
function remember(result, name) {
  state.last = result;
  window.facemtlLast = result;
  state.lastName = name;
}

function show(result, name, ctx) {
  remember(result, name);
  $("output").hidden = false;
  if (ctx) drawFaces(ctx, result);
  const body = $("results").querySelector("tbody");
  body.innerHTML = "";
  result.faces.forEach((f, i) => {
    const tr = document.createElement("tr");
    for (const text of [i + 1, genderText(f), ageText(f), raceText(f), otherText(f), f.score.toFixed(2)]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    body.append(tr);
  });
  if (result.found === 0) showNotice(`No face found in ${name}.`);
  else if (result.found > result.faces.length)
    showNotice(`${result.found} faces found; the ${result.faces.length} most certain are analysed.`);
  else showNotice(`${result.found} face${result.found > 1 ? "s" : ""} in ${name} (${result.milliseconds.toFixed(0)} ms).`);
  document.body.dataset.predictions = String(Number(document.body.dataset.predictions || 0) + 1);
}

function downloadJson() {
  if (!state.last) return;
  const blob = new Blob([JSON.stringify({ file: state.lastName, ...state.last }, null, 2)], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `${state.lastName.replace(/\.[^.]*$/, "") || "faces"}.json`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

// ---- webcam ----

function yieldToPage() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

async function startWebcam() {
  showError("");
  if (!navigator.mediaDevices?.getUserMedia) {
    showError("This browser offers no camera.");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
  } catch (e) {
    showError(`The camera could not be used (${e.name === "NotAllowedError" ? "permission denied" : e.message || e.name}).`);
    return;
  }
  const video = $("video");
  video.srcObject = stream;
  await video.play();
  $("output").hidden = false;
  $("webcam").textContent = "Stop the webcam";
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  // Frames shown, faces in them, and faces that went through the backbone (the others kept
  // what was said of them a few frames before): for the benchmark, in window.facemtlWebcam.
  const run = { stream, frames: 0, faces: 0, computed: 0, shown: -1, since: performance.now(), stopped: false };
  window.facemtlWebcam = run;
  state.webcam = run;
  while (!run.stopped) {
    // On the CPU backend a prediction resolves without leaving the microtask queue: yield, so
    // that the page stays responsive and the stop button works (through a message, which the
    // browser does not delay as it delays nested timeouts by 4 ms).
    await yieldToPage();
    if (!video.videoWidth) {
      await new Promise((next) => setTimeout(next, 50));
      continue;
    }
    // Resized only when the camera's size changes: setting a size clears the canvas anew.
    if (canvas.width !== video.videoWidth || canvas.height !== video.videoHeight) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
    }
    ctx.drawImage(video, 0, 0);
    const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let result;
    try {
      result = JSON.parse(await state.app.predict_rgba(new Uint8Array(pixels.data.buffer), canvas.width, canvas.height));
    } catch (e) {
      showError(`webcam: ${e.message || e}`);
      break;
    }
    if (run.stopped) break;
    // The boxes go on the very frame they were found in (still on the canvas).
    drawFaces(ctx, result);
    // The table changes only when a face comes, goes or is computed again: a frame whose
    // faces were all followed keeps it, and the page does no layout work for it.
    if (result.stages.faces_computed > 0 || result.faces.length !== run.shown) {
      show(result, "webcam frame", null);
      run.shown = result.faces.length;
    } else remember(result, "webcam frame");
    run.frames += 1;
    run.faces += result.faces.length;
    run.computed += result.stages.faces_computed;
    const seconds = (performance.now() - run.since) / 1000;
    $("fps").textContent = `${(run.frames / seconds).toFixed(1)} frames/s`;
    document.body.dataset.fps = (run.frames / seconds).toFixed(2);
  }
  stopWebcam();
}

function stopWebcam() {
  const run = state.webcam;
  if (!run) return;
  run.stopped = true;
  run.stream.getTracks().forEach((t) => t.stop());
  state.webcam = null;
  $("webcam").textContent = "Use the webcam";
}

// ---- educator panel ----

const SVG = "http://www.w3.org/2000/svg";

function svg(width, height) {
  const el = document.createElementNS(SVG, "svg");
  el.setAttribute("viewBox", `0 0 ${width} ${height}`);
  el.setAttribute("width", width);
  el.setAttribute("height", height);
  return el;
}

function add(parent, name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  parent.append(el);
  return el;
}

function drawArchitecture(header) {
  const tasks = header ? header.tasks.map((t) => t.name) : ["gender", "age", "race"];
  const width = 800;
  const height = 70 + 60 * tasks.length;
  const s = svg(width, height);
  const box = (x, y, w, h, text, fill) => {
    add(s, "rect", { x, y, width: w, height: h, rx: 6, fill, stroke: "#333" });
    text.split("\n").forEach((line, i) => add(s, "text", { x: x + w / 2, y: y + 18 + 15 * i, "text-anchor": "middle", "font-size": 12 }, line));
  };
  const mid = height / 2;
  box(10, mid - 25, 110, 50, "aligned face\n(detector)", "#eef");
  box(140, mid - 25, 140, 50, `${header ? header.backbone : "faceres"} backbone\n(pretrained)`, "#dde");
  box(300, mid - 25, 150, 50, `shared FC ${header ? header.shared.join("-") : 512}\nLeakyReLU, BatchNorm`, "#cfc");
  tasks.forEach((t, i) => {
    const y = 20 + i * 60;
    box(490, y, 150, 44, `${t} head\nFC ${header ? header.head_hidden : 128}, Dropout, FC`, "#fec");
    add(s, "line", { x1: 450, y1: mid, x2: 490, y2: y + 22, stroke: "#333" });
    add(s, "line", { x1: 640, y1: y + 22, x2: 670, y2: mid, stroke: "#999", "stroke-dasharray": 4 });
  });
  box(670, mid - 25, 120, 50, "Loss Weight\nLayer Σ wᵢLᵢ", "#fcc");
  add(s, "line", { x1: 120, y1: mid, x2: 140, y2: mid, stroke: "#333" });
  add(s, "line", { x1: 280, y1: mid, x2: 300, y2: mid, stroke: "#333" });
  $("architecture").replaceChildren(s);
}

const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"];

function lineChart(title, series, marks, yLabel) {
  const [w, h, l, b] = [360, 220, 46, 30];
  const s = svg(w, h);
  const xs = series.flatMap((p) => p.points.map((q) => q[0]));
  const ys = series.flatMap((p) => p.points.map((q) => q[1])).filter(Number.isFinite);
  const [x1, y0] = [Math.max(1, ...xs), Math.min(0, ...ys)];
  // An empty chart (the run has just started) still has an axis.
  const y1 = ys.length && Math.max(...ys) > y0 ? Math.max(...ys) * 1.05 : y0 + 1;
  const X = (x) => l + ((w - l - 10) * x) / x1;
  const Y = (y) => h - b - ((h - b - 24) * (y - y0)) / (y1 - y0);
  add(s, "text", { x: w / 2, y: 14, "text-anchor": "middle", "font-size": 13 }, title);
  add(s, "line", { x1: l, y1: h - b, x2: w - 10, y2: h - b, stroke: "#333" });
  add(s, "line", { x1: l, y1: 24, x2: l, y2: h - b, stroke: "#333" });
  add(s, "text", { x: w / 2, y: h - 4, "text-anchor": "middle", "font-size": 11 }, "epoch");
  add(s, "text", { x: 4, y: 16, "font-size": 11 }, yLabel);
  for (const v of [y0, (y0 + y1) / 2, y1]) add(s, "text", { x: l - 4, y: Y(v) + 4, "text-anchor": "end", "font-size": 10 }, v.toPrecision(2));
  add(s, "text", { x: X(x1), y: h - b + 14, "text-anchor": "end", "font-size": 10 }, String(x1));
  // A series may set its colour, a dash pattern and an opacity (a run overlaid on another).
  series.forEach((p, i) => {
    const colour = p.colour || COLOURS[i % COLOURS.length];
    const style = { fill: "none", stroke: colour, "stroke-width": 2, "stroke-opacity": p.opacity ?? 1 };
    if (p.dash) style["stroke-dasharray"] = p.dash;
    add(s, "polyline", { points: p.points.map(([x, y]) => `${X(x)},${Y(y)}`).join(" "), ...style });
    add(s, "text", { x: w - 12, y: 30 + 14 * i, "text-anchor": "end", "font-size": 11, fill: colour, "fill-opacity": p.opacity ?? 1 }, p.name);
  });
  marks.forEach((m, i) => {
    const colour = m.colour || "red";
    add(s, "line", { x1: X(m.x), y1: 24, x2: X(m.x), y2: h - b, stroke: colour, "stroke-dasharray": 3 });
    // Below the legend, which sits in the same top-right corner.
    add(s, "text", { x: X(m.x) - 3, y: 32 + 14 * (series.length + i), "text-anchor": "end", "font-size": 10, fill: colour }, m.label);
  });
  return s;
}

function drawReport(report) {
  const curves = $("curves");
  curves.replaceChildren();
  const tasks = [...new Set(report.rows.map((r) => r.task))];
  curves.append(
    lineChart(
      "Learned loss weights",
      tasks.map((t) => ({ name: t, points: report.rows.filter((r) => r.task === t).map((r) => [r.epoch, r.loss_weight]) })),
      [],
      "weight",
    ),
  );
  for (const t of tasks) {
    const rows = report.rows.filter((r) => r.task === t && r.event !== "frozen");
    const converged = rows.find((r) => r.event === "converged");
    curves.append(
      lineChart(
        `${t}: validation loss`,
        [{ name: "validation", points: rows.map((r) => [r.epoch, r.val_loss]) }],
        converged ? [{ x: converged.epoch, label: `frozen at ${converged.epoch}` }] : [],
        "loss",
      ),
    );
  }
  drawGroups($("groups"), report.groups);
}

// Per-group tables, each with its worst group marked.
function drawGroups(parent, figures) {
  parent.replaceChildren();
  for (const table of figures.tables) {
    const el = document.createElement("table");
    const worst = table.groups.reduce((w, g) => (w === null || (table.figure === "mae" ? g.value > w.value : g.value < w.value) ? g : w), null);
    const fmt = (v) => (table.figure === "mae" ? `${v.toFixed(2)} years` : `${(100 * v).toFixed(1)} %`);
    el.innerHTML = `<caption>${table.title}${worst ? ` (worst: ${worst.label})` : ""}</caption><tr><th>group</th><th>faces</th><th>${table.figure === "mae" ? "MAE" : "accuracy"}</th></tr>`;
    for (const g of table.groups) {
      const tr = document.createElement("tr");
      if (g === worst) tr.className = "worst";
      tr.innerHTML = `<td>${g.label}</td><td>${g.count}</td><td>${fmt(g.value)}</td>`;
      el.append(tr);
    }
    parent.append(el);
  }
}

// ---- a model of the visitor's: a file, or one trained in the Lab ----

// Switch the app to the model in `bytes`; a refused file leaves the previous model loaded.
function loadUserModel(bytes, name) {
  try {
    useModel(bytes);
    showError("");
    // The app computes with the backbone weights of its own model (int8 for the shipped
    // one); a model measured with others still runs, with slightly different answers.
    const weights = (header) => header.backbone_weights || "exact";
    showNotice(
      weights(state.header) === weights(state.appHeader)
        ? ""
        : `${name} was measured with the ${weights(state.header)} backbone weights; this page runs the ${weights(state.appHeader)} ones, so its answers may differ slightly from \`facemtl predict\`.`,
    );
    $("curves").innerHTML = "<p>No training report for this model.</p>";
    $("groups").innerHTML = "<p>No training report for this model.</p>";
    return true;
  } catch (err) {
    showError(`${name} was refused: ${err.message || err}. The previous model stays loaded.`);
    return false;
  }
}

// The Lab's code and data arrive only when it is opened.
async function openLab() {
  $("lab-open").disabled = true;
  try {
    const { open } = await import("./lab.js");
    await open({ state, download, lineChart, drawGroups, loadUserModel, predictAgain });
  } catch (e) {
    $("lab-open").disabled = false;
    showError(`The Lab could not be opened: ${e.message || e}`);
  }
}

// The last photo predicted again (after the model changed), if there is one.
function predictAgain() {
  if (state.lastBytes && !state.webcam) predictBytes(state.lastBytes, state.lastName);
}

// ---- wiring ----

function wire() {
  $("file").addEventListener("change", (e) => e.target.files[0] && predictFile(e.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (file) predictFile(file);
  });
  document.addEventListener("paste", (e) => {
    const item = [...(e.clipboardData?.items || [])].find((i) => i.kind === "file");
    if (item) predictFile(item.getAsFile());
  });
  $("webcam").addEventListener("click", () => (state.webcam ? stopWebcam() : startWebcam()));
  $("download").addEventListener("click", downloadJson);
  $("model-file").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    // Checked before a byte is read: what is copied into WebAssembly memory stays allocated.
    const limit = wasmBindings.App.max_model_bytes();
    if (file.size > limit) {
      showError(`${file.name} was refused: it is ${(file.size / 1e6).toFixed(0)} MB, and model files are at most ${(limit / 1e6).toFixed(0)} MB. The previous model stays loaded.`);
      return;
    }
    loadUserModel(new Uint8Array(await file.arrayBuffer()), file.name);
  });
  $("lab-open").addEventListener("click", openLab);
  SAMPLES.forEach((url, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = `${i + 1}`;
    b.title = `sample photo ${i + 1}`;
    b.addEventListener("click", async () => {
      const r = await fetch(assetUrl(url));
      predictBytes(new Uint8Array(await r.arrayBuffer()), `sample${i + 1}.jpg`);
    });
    $("gallery").append(b);
  });
  drawArchitecture(null);
}

wire();
if (window.wasmBindings) start();
else addEventListener("TrunkApplicationStarted", start, { once: true });
