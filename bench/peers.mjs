// facemtl beside its peers, face-api.js and Human, in the same headless Chromium on the same
// photos (BENCHMARKS.md "Beside the peers"): cold start, warm latency per photo and per face,
// and bytes downloaded as served, on each one's CPU backend (WebAssembly) and GPU backend
// (WebGPU on SwiftShader here; face-api.js has no WebGPU backend, so its WebGL one is used).
// Everything is served locally by web/serve.mjs; the peers come from their npm packages in
// bench/peers (npm ci there first) and take part in this benchmark only, never in the app.
// Photos: a one-face portrait cut from the first gallery photo, one UTKFace face (a 200x200
// close-up), the six gallery photos, and a 640x480 webcam frame given as pixels.
// Bytes are counted as the server sends them: every file precompressed with brotli, as the
// app's own build is (postbuild.mjs) and as a static host would serve all three. The output
// records the machine; figures from different machines are not compared.
// Usage (after scripts/web.sh's web_build; `npm ci` in bench/peers):
//   node bench/peers.mjs [--cpu-only] > bench/peers.json
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { launch } from "../tests/browser/browser.mjs";
import { precompress } from "../web/postbuild.mjs";
import { serve } from "../web/serve.mjs";
import { machine } from "./machine.mjs";

const ROOT = resolve(import.meta.dirname, "..");
const PEERS = join(ROOT, "bench/peers");
const MODULES = join(PEERS, "node_modules");
const DATA = process.env.FACEMTL_DATA || resolve(ROOT, "../shared/data");
const UTK = "26_0_0_20170102233359482.jpg.chip.jpg";

// One folder served as one site: the three analysers and the photos.
const site = mkdtempSync(join(tmpdir(), "facemtl-peers-"));
cpSync(join(PEERS, "peer.html"), join(site, "peer.html"));
cpSync(join(PEERS, "peer.js"), join(site, "peer.js"));
// With their times: a brotli file older than its source is stale, and the server sends gzip.
cpSync(join(ROOT, "dist"), join(site, "ours"), { recursive: true, preserveTimestamps: true });
mkdirSync(join(site, "face-api"));
cpSync(join(MODULES, "@vladmandic/face-api/dist/face-api.esm.js"), join(site, "face-api/face-api.esm.js"));
cpSync(join(MODULES, "@vladmandic/face-api/model"), join(site, "face-api/model"), { recursive: true });
mkdirSync(join(site, "human"));
cpSync(join(MODULES, "@vladmandic/human/dist/human.esm.js"), join(site, "human/human.esm.js"));
cpSync(join(MODULES, "@vladmandic/human/models"), join(site, "human/models"), { recursive: true });
cpSync(join(MODULES, "@tensorflow/tfjs-backend-wasm/dist"), join(site, "tfjs-wasm"), { recursive: true, filter: (f) => !f.includes(".") || f.endsWith(".wasm") || f.endsWith("dist") });
mkdirSync(join(site, "photos"));
const gallery = [1, 2, 3, 4, 5, 6].map((i) => `sample${i}.jpg`);
for (const name of gallery) cpSync(join(ROOT, "dist/assets/samples", name), join(site, "photos", name));
cpSync(join(DATA, "utkface/UTKFace", UTK), join(site, "photos/utkface.jpg"));
for (const peer of ["face-api", "human", "tfjs-wasm"]) await precompress(join(site, peer));
// Our module per backend, as the page's loader picks it: the CPU build where there is no
// WebGPU, the full one (trunk's, named by its hash) on WebGPU.
const glues = {
  cpu: "facemtl-web-cpu",
  webgpu: readdirSync(join(ROOT, "dist")).find((f) => /^facemtl-web-[0-9a-f]+\.js$/.test(f)).replace(/\.js$/, ""),
};
const server = await serve(site, 0, "/", { log: true });

// A one-face portrait every analyser finds: the first face of the first gallery photo, cut out
// with three times its box around it (found here by facemtl, cut and encoded by the browser).
async function portrait() {
  const { page, close } = await launch(null);
  await page.goto(`${server.url}peer.html?peer=facemtl&backend=cpu&glue=${glues.cpu}`);
  await page.waitForFunction(() => window.peerReady, null, { timeout: 60_000 });
  const jpeg = await page.evaluate(async () => {
    await window.peerReady;
    const bytes = new Uint8Array(await (await fetch("photos/sample1.jpg")).arrayBuffer());
    const { faces } = await window.facemtlApp.predict_photo(bytes);
    const b = faces[0].bbox;
    const side = 3 * Math.max(b.x_max - b.x_min, b.y_max - b.y_min);
    const [cx, cy] = [(b.x_min + b.x_max) / 2, (b.y_min + b.y_max) / 2];
    const img = await createImageBitmap(new Blob([bytes]));
    const canvas = Object.assign(document.createElement("canvas"), { width: Math.round(side), height: Math.round(side) });
    canvas.getContext("2d").drawImage(img, cx - side / 2, cy - side / 2, side, side, 0, 0, side, side);
    return canvas.toDataURL("image/jpeg", 0.92).split(",")[1];
  });
  await close();
  writeFileSync(join(site, "photos/one-face.jpg"), Buffer.from(jpeg, "base64"));
}
await portrait();

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(peer, backend) {
  // The peers' pages are not the app's: launched without one, and opened here.
  const { page, errors, close } = await launch(null, { webgpu: backend === "webgpu" });
  const served = server.log.length;
  const t0 = performance.now();
  await page.goto(`${server.url}peer.html?peer=${peer}&backend=${backend}&glue=${glues[backend]}`);
  try {
    await page.waitForFunction(() => window.peerReady, null, { timeout: 60_000 });
    await page.evaluate(() => Promise.race([window.peerReady, new Promise((_, fail) => setTimeout(() => fail(new Error("not ready in 5 min")), 300_000))]));
    const ready = performance.now() - t0;
    // A peer that hangs (an error inside a callback that never settles) becomes an error here.
    const limit = (promise, what) =>
      Promise.race([promise, new Promise((_, fail) => setTimeout(() => fail(new Error(`no answer for ${what} in 5 min`)), 300_000))]);
    const run = async (what) => {
      const t = performance.now();
      const result = await limit(page.evaluate((w) => window.peerRun(w), what), what);
      return { ms: performance.now() - t, ...result };
    };
    const first = await run("photos/one-face.jpg");
    const cold = performance.now() - t0;
    // The analyser's own files (code and models), not the photos it was given.
    const downloaded = server.log.slice(served).filter((r) => !r.path.startsWith("/photos/")).reduce((sum, r) => sum + r.bytes, 0);
    const repeats = backend === "wasm" || backend === "cpu" ? 3 : 1;
    const photos = {};
    for (const name of ["one-face.jpg", "utkface.jpg", ...gallery, "webcam"]) {
      const runs = [];
      for (let i = 0; i < repeats; i++) runs.push(await run(name === "webcam" ? "webcam" : `photos/${name}`));
      const ms = median(runs.map((r) => r.ms));
      const faces = runs[0].faces;
      // The first run apart: facemtl's webcam follows faces from frame to frame, so its
      // later runs of the same frame reuse what was said of them.
      photos[name] = { ms: Math.round(ms), first_ms: Math.round(runs[0].ms), faces, ms_per_face: faces ? Math.round(ms / faces) : null, stages: runs.at(-1).stages };
    }
    const gallery_ms = gallery.reduce((sum, name) => sum + photos[name].ms, 0);
    const gallery_faces = gallery.reduce((sum, name) => sum + photos[name].faces, 0);
    return {
      peer,
      backend,
      downloaded_bytes: downloaded,
      ready_ms: Math.round(ready),
      cold_start_ms: Math.round(cold),
      first_prediction_ms: Math.round(first.ms),
      warm_one_face_ms: photos["one-face.jpg"].ms,
      warm_utkface_ms: photos["utkface.jpg"].ms,
      webcam_frame_ms: photos.webcam.ms,
      gallery_ms_per_face: Math.round(gallery_ms / Math.max(1, gallery_faces)),
      photos,
      errors,
    };
  } catch (e) {
    return { peer, backend, error: String(e.message || e).split("\n")[0], errors };
  } finally {
    await close();
  }
}

// --cpu-only: each analyser's WebAssembly backend alone.
const CPU_ONLY = process.argv.includes("--cpu-only");
const runs = [];
for (const [peer, backends] of [["facemtl", ["cpu", "webgpu"]], ["faceapi", ["wasm", "webgl"]], ["human", ["wasm", "webgpu"]]]) {
  for (const backend of CPU_ONLY ? backends.slice(0, 1) : backends) {
    const result = await measure(peer, backend);
    console.error(JSON.stringify({ peer, backend, one_face_ms: result.warm_one_face_ms, error: result.error }));
    runs.push(result);
  }
}
console.log(JSON.stringify({ machine: machine(), headless: true, photos: { utkface: UTK, gallery }, runs }, null, 2));
server.server.close();
rmSync(site, { recursive: true, force: true });
