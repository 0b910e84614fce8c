// Browser benchmark of the app (BENCHMARKS.md): per backend, in Debian's headless Chromium on
// this machine, the download size as served (brotli; and what a gzip-only host would send) with
// its breakdown, the cold start (page load to the first prediction; also with a warm HTTP cache
// and an empty Cache API, and for a returning visitor), warm latency per photo with
// 1 and 12 faces with the time of each stage, webcam frames/s.
// Usage (after scripts/web.sh's web_build): node bench/web.mjs > bench/web.json
// ($DIST: another build to measure; $BACKENDS: cpu,webgpu by default.)
import { readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { launch, ready } from "../tests/browser/browser.mjs";
import { INCOMPRESSIBLE, serve } from "../web/serve.mjs";
import { machine } from "./machine.mjs";

const ROOT = resolve(import.meta.dirname, "..");
// The build to measure: dist/, or another one (e.g. a build without SIMD) named by $DIST.
const DIST = process.env.DIST || join(ROOT, "dist");
const ONE_FACE = join(ROOT, "tests/fixtures/exif_rotated.jpg");
const DATA = process.env.FACEMTL_DATA || resolve(ROOT, "../shared/data");
const UTK = "26_0_0_20170102233359482.jpg.chip.jpg";
const site = await serve(DIST, 0, "/bench/", { log: true });
// Chromium's fake camera, granted without asking.
const FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"];

async function predictions(page) {
  return Number((await page.getAttribute("body", "data-predictions")) || 0);
}

let uploads = 0;

async function timed(page, file) {
  const n = await predictions(page);
  // A new name each time: the same file twice would not fire the input's change event.
  uploads += 1;
  const upload = typeof file === "string" ? { name: `photo-${uploads}.jpg`, mimeType: "image/jpeg", buffer: readFileSync(file) } : { ...file, name: `${uploads}-${file.name}` };
  const t = performance.now();
  await page.setInputFiles("#file", upload);
  await page.waitForSelector(`body[data-predictions='${n + 1}']`, { timeout: 300_000 });
  const last = await page.evaluate(() => window.facemtlLast);
  return { ms: performance.now() - t, faces: last.faces.length, stages: last.stages };
}

// What Chromium's fake camera plays: a face filling a 640x480 frame (a UTKFace face scaled to
// 400x400 on grey), as a motion-JPEG file; null for its default picture, which has no face.
async function faceClip() {
  const { page, close } = await launch(site.url, { query: "?backend=cpu" });
  const face = readFileSync(join(DATA, "utkface/UTKFace", UTK)).toString("base64");
  const jpeg = await page.evaluate(async (face) => {
    const img = new Image();
    img.src = `data:image/jpeg;base64,${face}`;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = 640;
    c.height = 480;
    const g = c.getContext("2d");
    g.fillStyle = "#5a5a5a";
    g.fillRect(0, 0, 640, 480);
    g.drawImage(img, 120, 40, 400, 400);
    return c.toDataURL("image/jpeg", 0.9).split(",")[1];
  }, face);
  await close();
  const file = join(tmpdir(), "facemtl-face.mjpeg");
  writeFileSync(file, Buffer.from(jpeg, "base64"));
  return file;
}

async function webcamFps(backend, clip) {
  const args = [...FAKE_CAMERA, ...(clip ? [`--use-file-for-fake-video-capture=${clip}`] : [])];
  const { page, close } = await launch(site.url, { query: `?backend=${backend}`, webgpu: backend === "webgpu", args });
  await ready(page, 600_000);
  await page.click("#webcam");
  await page.waitForTimeout(backend === "webgpu" ? 30_000 : 15_000);
  const fps = Number(await page.getAttribute("body", "data-fps"));
  const last = await page.evaluate(() => window.facemtlLast);
  const { frames, faces, computed } = await page.evaluate(() => window.facemtlWebcam);
  await page.click("#webcam");
  await close();
  return { fps, faces: last.faces.length, stages: last.stages, frames, faces_shown: faces, faces_computed: computed };
}

async function run(backend) {
  const { page, close } = await launch(null, { webgpu: backend === "webgpu", args: FAKE_CAMERA });
  const served = site.log.length;
  const t0 = performance.now();
  await page.goto(`${site.url}?backend=${backend}`);
  await ready(page, 600_000);
  const readyMs = performance.now() - t0;
  const first = await timed(page, ONE_FACE);
  const cold = performance.now() - t0;
  const files = {};
  for (const r of site.log.slice(served)) {
    const name = r.path.replace("/bench/", "");
    const body = readFileSync(join(DIST, name || "index.html"));
    files[name] = { served: r.bytes, encoding: r.encoding, gzip: INCOMPRESSIBLE.test(name) ? body.length : gzipSync(body, { level: 9 }).length };
  }
  // Ten faces: sample 5 (five faces) twice side by side, drawn in the page.
  const collage = await page.evaluate(async () => {
    const img = new Image();
    img.src = "assets/samples/sample5.jpg";
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.width * 2;
    c.height = img.height;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    g.drawImage(img, img.width, 0);
    return c.toDataURL("image/jpeg", 0.92).split(",")[1];
  });
  const ten = { name: "ten.jpg", mimeType: "image/jpeg", buffer: Buffer.from(collage, "base64") };
  const warm1 = [];
  const warm10 = [];
  let stages = {};
  for (let i = 0; i < 3; i++) {
    const r = await timed(page, ONE_FACE);
    warm1.push(r.ms);
    stages.one_face = r.stages;
  }
  let tenFaces = 0;
  for (let i = 0; i < 3; i++) {
    const r = await timed(page, ten);
    warm10.push(r.ms);
    tenFaces = r.faces;
    stages.ten_faces = r.stages;
  }
  // A second visit with the HTTP cache warm but the Cache API emptied, then a returning visit
  // (both from page load to the first prediction).
  const visit = async () => {
    const t = performance.now();
    await page.reload();
    await ready(page, 600_000);
    await timed(page, ONE_FACE);
    return Math.round(performance.now() - t);
  };
  await page.evaluate(() => caches.delete("facemtl-assets"));
  const coldCacheApi = await visit();
  const returning = await visit();
  await close();
  const face = await webcamFps(backend, clip);
  const noFace = await webcamFps(backend, null);
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return {
    backend,
    downloaded_bytes: Object.values(files).reduce((a, f) => a + f.served, 0),
    gzip_only_bytes: Object.values(files).reduce((a, f) => a + f.gzip, 0),
    files,
    ready_ms: Math.round(readyMs),
    cold_start_ms: Math.round(cold),
    first_prediction_ms: Math.round(first.ms),
    warm_http_cold_cache_api_start_ms: coldCacheApi,
    returning_visit_start_ms: returning,
    warm_one_face_ms: Math.round(median(warm1)),
    warm_ten_faces_ms: Math.round(median(warm10)),
    ten_faces_found: tenFaces,
    // Where the last warm prediction's time went (decode, detect, align, backbone, head, read-back).
    stages,
    // Frames/s with a face filling the frame (the first view suffices) and with the fake
    // camera's default picture (no face: every view is searched).
    webcam_fps: face.fps,
    webcam_stages: face.stages,
    // Of the faces shown, how many went through the backbone (the tracker keeps the others'
    // attributes for up to 10 frames).
    webcam_frames: face.frames,
    webcam_faces_shown: face.faces_shown,
    webcam_faces_computed: face.faces_computed,
    webcam_no_face_fps: noFace.fps,
  };
}

const clip = await faceClip();
// BACKENDS=cpu measures the CPU fallback alone.
const results = { machine: machine(), headless: true };
for (const backend of (process.env.BACKENDS || "cpu,webgpu").split(",")) results[backend] = await run(backend);
console.log(JSON.stringify(results, null, 2));
site.server.close();
