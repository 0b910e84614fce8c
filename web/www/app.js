// The page around the WebAssembly module: it starts the app on the best backend, loads the
// model, and wires the inputs (file, drop, paste, gallery, webcam, a model file, the Lab).
// Each concern lives in its module under modules/.
import { REPORT, SAMPLES, assetUrl, fetchManifest, keepManifest, keptManifest, pruneCache } from "./modules/assets.js";
import { drawReport } from "./modules/charts.js";
import { loadNetworks, loadUserModel, updateFrom } from "./modules/model.js";
import { $, showError, state } from "./modules/page.js";
import { downloadJson, predictBytes, predictFile } from "./modules/results.js";
import { startWebcam, stopWebcam } from "./modules/webcam.js";

// The backend asked for in the URL (?backend=webgpu or cpu), else the best one offered.
async function startApp() {
  const force = new URLSearchParams(location.search).get("backend");
  const badge = $("backend");
  try {
    state.app = await wasmBindings.App.create(force === "webgpu" || force === "cpu" ? force : null);
  } catch (e) {
    badge.dataset.state = "error";
    badge.textContent = `Could not start: ${e.message || e}`;
    return false;
  }
  badge.dataset.state = state.app.backend;
  badge.textContent = state.app.backend === "webgpu" ? "Computing on: WebGPU" : "Computing on: CPU (WebAssembly)";
  return true;
}

async function start() {
  if (!(await startApp())) return;
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

// A photo ends the webcam.
function photo(file) {
  stopWebcam();
  return predictFile(file);
}

async function sample(path, name) {
  stopWebcam();
  const r = await fetch(assetUrl(path));
  predictBytes(new Uint8Array(await r.arrayBuffer()), name);
}

async function modelFile(file) {
  // Checked before a byte is read: what is copied into WebAssembly memory stays allocated.
  const limit = wasmBindings.App.max_model_bytes();
  if (file.size > limit) {
    showError(`${file.name} was refused: it is ${(file.size / 1e6).toFixed(0)} MB, and model files are at most ${(limit / 1e6).toFixed(0)} MB. The previous model stays loaded.`);
    return;
  }
  loadUserModel(new Uint8Array(await file.arrayBuffer()), file.name);
}

// The Lab's code and data arrive only when it is opened.
async function openLab() {
  $("lab-open").disabled = true;
  try {
    const { open } = await import("./modules/lab.js");
    await open();
  } catch (e) {
    $("lab-open").disabled = false;
    showError(`The Lab could not be opened: ${e.message || e}`);
  }
}

function wireDrop() {
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
    if (file) photo(file);
  });
  document.addEventListener("paste", (e) => {
    const item = [...(e.clipboardData?.items || [])].find((i) => i.kind === "file");
    if (item) photo(item.getAsFile());
  });
}

function wire() {
  $("file").addEventListener("change", (e) => e.target.files[0] && photo(e.target.files[0]));
  wireDrop();
  $("webcam").addEventListener("click", () => (state.webcam ? stopWebcam() : startWebcam()));
  $("download").addEventListener("click", downloadJson);
  $("model-file").addEventListener("change", (e) => e.target.files[0] && modelFile(e.target.files[0]));
  $("lab-open").addEventListener("click", openLab);
  SAMPLES.forEach((path, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = `${i + 1}`;
    b.title = `sample photo ${i + 1}`;
    b.addEventListener("click", () => sample(path, `sample${i + 1}.jpg`));
    $("gallery").append(b);
  });
}

wire();
if (window.wasmBindings) start();
else addEventListener("TrunkApplicationStarted", start, { once: true });
