// Real-browser tests of the app: Debian's headless Chromium, driven by playwright-core, against
// the trunk build in dist/ served on 127.0.0.1 under a path prefix (compressed, as a static host).
// The predictions must agree with the native `facemtl predict` on the same photos.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { crc32, deflateSync, gzipSync } from "node:zlib";
import { launch, ready } from "./browser.mjs";
import { resealModel } from "./files.mjs";
import { serve } from "../../web/serve.mjs";
import { wasmSections, writeManifest } from "../../web/postbuild.mjs";

const ROOT = resolve(import.meta.dirname, "../..");
const DIST = join(ROOT, "dist");
const MODEL = join(ROOT, "models/utkface-celeba-faceres.fmtl");
const ARTIFACTS = join(import.meta.dirname, "artifacts");
const DATA = process.env.FACEMTL_DATA || resolve(ROOT, "../shared/data");
const BIN = process.env.FACEMTL_BIN;

// Three UTKFace faces (one per gender and a child) and a group photo of the gallery.
const UTK = ["26_0_0_20170102233359482.jpg.chip.jpg", "35_1_2_20170103182708145.jpg.chip.jpg", "8_1_0_20161220223020578.jpg.chip.jpg"];
const photos = () => [...UTK.map((f) => join(DATA, "utkface/UTKFace", f)), join(DIST, "assets/samples/sample2.jpg")];

let site;
before(async () => {
  assert.ok(existsSync(join(DIST, "index.html")), "dist/ is missing: build the app first (scripts/web.sh)");
  site = await serve(DIST, 0, "/some/prefix/", { log: true });
  mkdirSync(ARTIFACTS, { recursive: true });
});
after(() => site?.server.close());

const open = (options = {}) => launch((options.site || site).url, options);

async function predict(page, file) {
  const before = Number((await page.getAttribute("body", "data-predictions")) || 0);
  await page.setInputFiles("#file", file);
  await page.waitForSelector(`body[data-predictions='${before + 1}']`, { timeout: 180_000 });
}

// A command that runs the native binary on another vector path (see lab.test.mjs): `predict` is
// compared with the page there too.
const OTHER_PATH = process.env.FACEMTL_NATIVE_OTHER_PATH?.split(" ").filter(Boolean) ?? [];

function native(files, model = MODEL, wrapper = []) {
  const [command, ...args] = [...wrapper, BIN, "predict", "--model", model, ...files];
  const out = execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  const byFile = new Map();
  for (const line of out.trim().split("\n")) {
    const face = JSON.parse(line);
    if (!byFile.has(face.file)) byFile.set(face.file, []);
    if (!face.error) byFile.get(face.file).push(face);
  }
  return byFile;
}

/// The task names in a model file's header, in its order.
function modelTasks(file) {
  const bytes = readFileSync(file);
  return JSON.parse(bytes.subarray(12, 12 + bytes.readUInt32LE(8)).toString()).tasks.map((t) => t.name);
}

/// An age head's kind edited to predict 30 years more: a regression's offset, or a distribution's
/// range of years (every bin moves by 30).
function olderBy30(kind) {
  if (kind.regression) kind.regression.norm.offset += 30;
  else (kind.distribution.low += 30), (kind.distribution.high += 30);
}

// The page and `predict` read a photo with different vector units (WebAssembly SIMD or WebGPU;
// AVX-512, AVX2 or SSE), so their numbers part in the last bits; on the CPU fallback the int8
// backbone's 1x1 layers also sum integer codes of their inputs (shared/src/nhwc), which moves
// features by up to 1.1e-4 of their scale. Faces are compared by their numbers within these gaps,
// above those differences (measured on the photos below: WebGPU, probabilities within 4.6e-6 and
// ages within 2.7e-5 years; the CPU fallback against AVX-512 and SSE4.2, probabilities within
// 6.0e-5 and ages within 0.0028 years; scores equal as printed) and far below a wrong answer, not
// by decisions (gender at 0.5, the top race, the detector's threshold) that a number sitting at the
// threshold could cross on one side only.
const GAPS = { score: 1e-3, probability: 1e-3, years: 0.01 };
const DETECTOR_THRESHOLD = 0.5;

function agree(browserFaces, nativeFaces, what) {
  const gap = { score: 0, probability: 0, years: 0 };
  const within = (key, a, b, label) => {
    gap[key] = Math.max(gap[key], Math.abs(a - b));
    assert.ok(Math.abs(a - b) <= GAPS[key], `${label}: page ${a}, native ${b}`);
  };
  // The same faces, unless the one that only one side found scores at the threshold.
  const extra = [...browserFaces.slice(nativeFaces.length), ...nativeFaces.slice(browserFaces.length)];
  extra.forEach((f) => assert.ok(Math.abs(f.score - DETECTOR_THRESHOLD) <= GAPS.score, `${what}: faces found, ${browserFaces.length} against ${nativeFaces.length}`));
  browserFaces.slice(0, nativeFaces.length).forEach((b, i) => {
    const n = nativeFaces[i];
    const label = `${what} face ${i}`;
    within("score", b.score, n.score, `${label}: detector score`);
    within("probability", b.female_probability, n.female_probability, `${label}: female probability`);
    within("years", b.age.years, n.age.years, `${label}: age`);
    if (n.age.low !== undefined) {
      within("years", b.age.low, n.age.low, `${label}: age interval's low end`);
      within("years", b.age.high, n.age.high, `${label}: age interval's high end`);
    }
    b.race.forEach(([name, p], r) => within("probability", p, n.race[r][1], `${label}: ${name}`));
    assert.equal(b.young_probability === undefined, n.young_probability === undefined, `${label}: Young answered on one side only`);
    if (n.young_probability !== undefined) within("probability", b.young_probability, n.young_probability, `${label}: Young probability`);
  });
  return gap;
}
async function lastResult(page) {
  return page.evaluate(() => window.facemtlLast);
}

/// The page's answer for each of `files` against `predict`'s (and, with `otherPath`, against
/// `predict` on another vector path too); the largest gaps are printed.
async function checkAgainstNative(t, page, files, label, { model = MODEL, otherPath = false } = {}) {
  const natives = [["native", native(files, model)]];
  if (otherPath && OTHER_PATH.length) natives.push([`native under ${OTHER_PATH.join(" ")}`, native(files, model, OTHER_PATH)]);
  for (const file of files) {
    await predict(page, file);
    const result = await lastResult(page);
    for (const [who, expected] of natives) {
      const gap = agree(result.faces, expected.get(file), `${label} ${file.split("/").pop()} against ${who}`);
      t.diagnostic(`${label} ${file.split("/").pop()}, page against ${who}: largest gaps ${JSON.stringify(gap)}`);
    }
    assert.ok(result.faces.length > 0, `${label}: a face in ${file}`);
    const rows = await page.locator("#results tbody tr").count();
    assert.equal(rows, result.faces.length, "one table row per face");
    const columns = await page.locator("#results thead th").allTextContents();
    assert.deepEqual(columns, ["#", ...modelTasks(model), "detector score"], "one column per task of the model, in its order");
    const age = modelTasks(model).indexOf("age");
    if (age >= 0 && result.faces[0].age.low !== undefined) {
      const cell = await page.locator("#results tbody tr").first().locator("td").nth(age + 1).textContent();
      assert.match(cell, /^\d+ \(\d+–\d+\)$/, "the age shows with its 80 % interval");
    }
  }
}

function skipWithoutData(t) {
  if (!BIN || !existsSync(join(DATA, "utkface/UTKFace"))) {
    assert.notEqual(process.env.FACEMTL_REQUIRE_DATA, "1", `FACEMTL_REQUIRE_DATA=1, but FACEMTL_BIN or ${DATA} is missing`);
    console.log(`SKIP: browser agreement tests need FACEMTL_BIN and the data sets in ${DATA}`);
    t.skip("no data sets or native binary");
    return true;
  }
  return false;
}

/// Which of the two WebAssembly modules (the loader's `full` and `cpu`) the page fetched.
function modulesFetched(requests) {
  return requests
    .map((r) => new URL(r.url).pathname.split("/").pop())
    .filter((file) => file.endsWith("_bg.wasm"))
    .map((file) => (file === "facemtl-web-cpu_bg.wasm" ? "cpu" : "full"));
}

test("without WebGPU the CPU fallback runs, and agrees with the native predict", async (t) => {
  if (skipWithoutData(t)) return;
  const served = site.log.length;
  const { page, requests, errors, close } = await open();
  try {
    await ready(page);
    // Everything a visitor without WebGPU downloads fits in 5 MB as served (brotli), and in
    // 5.5 MB from a host that only compresses with gzip: 4.47 and 4.94 MB measured (the CPU
    // module, 0.61 MB with brotli, in place of the full one, 2.31 MB; BENCHMARKS.md).
    const log = site.log.slice(served);
    const downloaded = log.reduce((sum, r) => sum + r.bytes, 0);
    assert.ok(downloaded > 1e6 && downloaded <= 5e6, `${downloaded} bytes downloaded`);
    const gzipped = log.reduce((sum, r) => {
      const file = join(DIST, r.path.replace(/^\/some\/prefix\//, "").split("?")[0] || "index.html");
      return sum + gzipSync(readFileSync(file), { level: 9 }).length;
    }, 0);
    assert.ok(gzipped <= 5.5e6, `${gzipped} bytes from a gzip-only host`);
    t.diagnostic(`downloaded ${downloaded} bytes as served, ${gzipped} from a gzip-only host`);
    assert.match(await page.textContent("#backend"), /CPU/);
    assert.deepEqual(modulesFetched(requests), ["cpu"], "a browser without WebGPU loads the CPU module alone");
    await checkAgainstNative(t, page, photos(), "cpu", { otherPath: true });
    // Every prediction says where its time went.
    const { stages, milliseconds } = await lastResult(page);
    for (const stage of ["decode_ms", "detect_ms", "align_ms", "backbone_ms", "head_ms", "read_back_ms"]) {
      assert.ok(stages[stage] >= 0, `${stage}: ${JSON.stringify(stages)}`);
    }
    assert.ok(stages.detect_ms > 0 && stages.backbone_ms > 0 && stages.detector_views >= 2, JSON.stringify(stages));
    const sum = Object.entries(stages).filter(([k]) => k.endsWith("_ms")).reduce((a, [, v]) => a + v, 0);
    assert.ok(Math.abs(sum - milliseconds) < 5, `stages add up to ${sum} of ${milliseconds} ms`);
    await page.screenshot({ path: join(ARTIFACTS, "cpu-group-photo.png"), fullPage: true });
    // Nothing leaves the origin and nothing is uploaded.
    for (const r of requests) {
      assert.ok(r.url.startsWith(site.url) || r.url.startsWith("blob:") || r.url.startsWith("data:"), `request outside the page's origin: ${r.url}`);
      assert.equal(r.method, "GET", `${r.method} ${r.url}`);
    }
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test("test-time mirror follows the model's header in the page as in the native predict, on or off", async (t) => {
  if (skipWithoutData(t)) return;
  // The shipped model reads each face with its mirror image; the same model with it off:
  const dir = mkdtempSync(join(tmpdir(), "facemtl-mirror-"));
  const [mirrored, upright] = [join(dir, "mirror.fmtl"), join(dir, "upright.fmtl")];
  writeFileSync(mirrored, resealModel(readFileSync(MODEL), (h) => (h.test_time_mirror = true)));
  writeFileSync(upright, resealModel(readFileSync(MODEL), (h) => delete h.test_time_mirror));
  const faces = UTK.map((f) => join(DATA, "utkface/UTKFace", f));
  // The mirror changes the answers (a face is not symmetric)...
  const [plain, both] = [native(faces, upright), native(faces, mirrored)];
  const ages = (byFile) => faces.map((f) => byFile.get(f)[0].age.years);
  assert.notDeepEqual(ages(plain), ages(both), "test-time mirror changes the predicted ages");
  // ... and the page computes what `predict` computes, each way.
  const { page, errors, close } = await open({ query: "?backend=cpu" });
  try {
    await ready(page);
    await page.setInputFiles("#model-file", upright);
    await page.waitForFunction(() => !/mirror/.test(document.getElementById("model-info").textContent));
    await checkAgainstNative(t, page, faces, "upright", { model: upright });
    await page.setInputFiles("#model-file", mirrored);
    await page.waitForFunction(() => /mirror/.test(document.getElementById("model-info").textContent));
    await checkAgainstNative(t, page, faces, "mirror", { model: mirrored });
    assert.deepEqual(errors, []);
  } finally {
    await close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a model of a user's own tasks is shown by what its header says: its tasks as columns, its answers as `predict` gives them", async (t) => {
  if (skipWithoutData(t)) return;
  // The shipped model with its age and race heads renamed into tasks the page has never heard
  // of (the weights are the same): `predict` writes them under their own names. Its Young head
  // keeps its name.
  const dir = mkdtempSync(join(tmpdir(), "facemtl-own-tasks-"));
  const own = join(dir, "own.fmtl");
  const labels = ["w", "b", "a", "i", "o"];
  writeFileSync(
    own,
    resealModel(readFileSync(MODEL), (h) => {
      h.tasks[1].name = "years";
      h.tasks[2] = { name: "ancestry", kind: { class: { labels } } };
      h.metrics = h.metrics.map(([k, v]) => [k.replace(/^age_/, "years_").replace(/^race_/, "ancestry_"), v]);
    }),
  );
  const face = join(DATA, "utkface/UTKFace", UTK[1]);
  const expected = native([face], own).get(face)[0];
  assert.ok(expected.years && expected.ancestry, "predict names the renamed tasks");
  const { page, errors, close } = await open({ query: "?backend=cpu" });
  try {
    await ready(page);
    await page.setInputFiles("#model-file", own);
    await page.waitForFunction(() => /tasks gender, years, ancestry, young; .*test: .*years MAE \d/.test(document.getElementById("model-info").textContent));
    await predict(page, face);
    const columns = await page.locator("#results thead th").allTextContents();
    assert.deepEqual(columns, ["#", "gender", "years", "ancestry", "young", "detector score"]);
    const got = (await lastResult(page)).faces[0];
    const [gender, years, ancestry] = got.answers;
    assert.deepEqual(got.answers.map((a) => [a.task, a.kind]), [["gender", "class"], ["years", "value"], ["ancestry", "class"], ["young", "class"]]);
    assert.ok(Math.abs(gender.probabilities[1][1] - expected.female_probability) <= GAPS.probability, "gender");
    assert.ok(Math.abs(years.value - expected.years.value) <= GAPS.years, `years: page ${years.value}, native ${expected.years.value}`);
    assert.equal(years.plus_minus, expected.years.plus_minus, "the typical miss is the header's test MAE");
    ancestry.probabilities.forEach(([label, p], i) => {
      assert.equal(label, expected.ancestry[i][0]);
      assert.ok(Math.abs(p - expected.ancestry[i][1]) <= GAPS.probability, `ancestry ${label}`);
    });
    // A value shows with its miss; a class of more than two labels shows its likeliest one,
    // and the others, likeliest first, on demand.
    const cells = page.locator("#results tbody tr").first().locator("td");
    assert.match(await cells.nth(2).textContent(), /^\d+ ± \d+$/);
    const top = await cells.nth(3).locator("summary").textContent();
    const rest = await cells.nth(3).evaluate((td) => td.querySelector("details").lastChild.textContent);
    const shown = [top, ...rest.split(", ")].map((c) => c.split(" ")[0]);
    assert.deepEqual(shown, [...expected.ancestry].sort((x, y) => y[1] - x[1]).map(([l]) => l));
    assert.deepEqual(errors, []);
  } finally {
    await close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a gender answer in the model's \"can't tell\" band says so on the page, as `predict` does", async (t) => {
  if (skipWithoutData(t)) return;
  // The shipped model with its band widened just past one child's calibrated answer.
  const dir = mkdtempSync(join(tmpdir(), "facemtl-cant-tell-"));
  const unsure = join(dir, "unsure.fmtl");
  const face = join(DATA, "utkface/UTKFace", UTK[2]);
  const shipped = native([face], MODEL).get(face)[0];
  const sure = Math.max(shipped.female_probability, 1 - shipped.female_probability);
  writeFileSync(
    unsure,
    resealModel(readFileSync(MODEL), (h) => {
      h.calibration.cant_tell_below = Math.min(1, sure + 0.005);
      h.trained_on += " (band widened)";
    }),
  );
  const expected = native([face], unsure).get(face)[0];
  assert.equal(expected.gender, "can't tell", `predict: ${JSON.stringify(expected)}`);
  const { page, errors, close } = await open({ query: "?backend=cpu" });
  try {
    await ready(page);
    await page.setInputFiles("#model-file", unsure);
    await page.waitForFunction(() => /band widened/.test(document.getElementById("model-info").textContent));
    await predict(page, face);
    const got = (await lastResult(page)).faces[0];
    assert.equal(got.gender, "can't tell");
    assert.equal(got.answers[0].cant_tell, true);
    const cell = page.locator("#results tbody tr").first().locator("td").nth(1);
    assert.equal(await cell.locator("summary").textContent(), "can't tell");
    assert.match(await cell.textContent(), /female \d+ %/, "the probabilities it weighed, on demand");
    assert.deepEqual(errors, []);
  } finally {
    await close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a model that fine-tuned the backbone's last block carries only it, and the page predicts with it as `predict` does", async (t) => {
  if (skipWithoutData(t)) return;
  // A small partial fine-tuning run on real faces (its activations are cached once), exported
  // for the browser's int8 backbone.
  const dir = mkdtempSync(join(tmpdir(), "facemtl-tuned-"));
  const tuned = join(dir, "tuned.fmtl");
  const run = (args) => execFileSync(BIN, ["--backend", "cpu", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  run(["train", "--dataset", "utkface", "--protocol", "all-ages", "--tune-blocks", "1", "--limit", "40", "--max-epochs", "1", "--lr", "1e-3", "--data-dir", DATA, "--run-dir", join(dir, "run")]);
  run(["export", "--run-dir", join(dir, "run"), "--out", tuned, "--backbone-weights", "int8", "--data-dir", DATA]);
  const bytes = readFileSync(tuned);
  const header = JSON.parse(bytes.subarray(12, 12 + bytes.readUInt32LE(8)).toString());
  assert.equal(header.tuned_blocks, 1);
  assert.ok(bytes.length < 4e6, `one block and the head, not the backbone: ${bytes.length} bytes`);
  const faces = UTK.map((f) => join(DATA, "utkface/UTKFace", f));
  const { page, errors, close } = await open({ query: "?backend=cpu" });
  try {
    await ready(page);
    await page.setInputFiles("#model-file", tuned);
    await page.waitForFunction(() => /Its last backbone block was fine-tuned/.test(document.getElementById("model-info").textContent));
    await checkAgainstNative(t, page, faces, "tuned", { model: tuned });
    assert.deepEqual(errors, []);
  } finally {
    await close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("WebGPU (SwiftShader) runs when offered, and agrees with the native predict", async (t) => {
  if (skipWithoutData(t)) return;
  const { page, requests, errors, close } = await open({ webgpu: true });
  try {
    await ready(page);
    assert.match(await page.textContent("#backend"), /WebGPU/);
    assert.deepEqual(modulesFetched(requests), ["full"], "a browser with WebGPU loads the full module alone");
    await checkAgainstNative(t, page, photos().slice(0, 1), "webgpu");
    await page.screenshot({ path: join(ARTIFACTS, "webgpu-photo.png"), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

function hugePng(side) {
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(Buffer.alloc(100))), chunk("IEND", Buffer.alloc(0))]);
}

/// A 24-bit BMP whose header says `side` x `side` pixels, followed by a few of them.
function hugeBmp(side) {
  const head = Buffer.alloc(54);
  head.write("BM", 0);
  head.writeUInt32LE(54 + 64, 2);
  head.writeUInt32LE(54, 10);
  head.writeUInt32LE(40, 14);
  head.writeInt32LE(side, 18);
  head.writeInt32LE(side, 22);
  head.writeUInt16LE(1, 26);
  head.writeUInt16LE(24, 28);
  return Buffer.concat([head, Buffer.alloc(64)]);
}

test("bad files, a photo without a face, a refused model and a denied camera give clear messages", async () => {
  const { page, errors, close } = await open({ query: "?backend=cpu" });
  try {
    await ready(page);
    const error = async (file, pattern) => {
      await page.setInputFiles("#file", file);
      await page.waitForFunction((p) => new RegExp(p).test(document.getElementById("error").textContent), pattern.source, { timeout: 30_000 });
    };
    await error({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("not a photo at all") }, /notes\.txt: .*(format|image)/i);
    const jpeg = readFileSync(join(ROOT, "tests/fixtures/exif_rotated.jpg"));
    await error({ name: "cut.jpg", mimeType: "image/jpeg", buffer: jpeg.subarray(0, jpeg.length / 2) }, /cut\.jpg: .*truncated/i);
    await error({ name: "huge.png", mimeType: "image/png", buffer: hugePng(20000) }, /huge\.png: .*(large|pixels|side)/i);
    // Said by their size, in WebAssembly's 32-bit memory too (was "0x0 pixels" and "not an image").
    await error({ name: "vast.png", mimeType: "image/png", buffer: hugePng(60000) }, /vast\.png: the image is 60000x60000 pixels/);
    await error({ name: "vast.bmp", mimeType: "image/bmp", buffer: hugeBmp(60000) }, /vast\.bmp: the image is 60000x60000 pixels/);
    // Dropped rather than picked: 41 MB is slow to hand through the DevTools protocol.
    await page.evaluate(() => {
      const data = new DataTransfer();
      data.items.add(new File([new Uint8Array(41 * 1000 * 1000)], "big.jpg", { type: "image/jpeg" }));
      document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
    });
    await page.waitForFunction(() => /big\.jpg is 41 MB/.test(document.getElementById("error").textContent));
    // A generated landscape: no face.
    const landscape = await page.evaluate(() => {
      const c = document.createElement("canvas");
      c.width = 640;
      c.height = 480;
      const g = c.getContext("2d");
      const sky = g.createLinearGradient(0, 0, 0, 300);
      sky.addColorStop(0, "#5a8ce6");
      sky.addColorStop(1, "#a8d0f0");
      g.fillStyle = sky;
      g.fillRect(0, 0, 640, 300);
      g.fillStyle = "#2f7a2f";
      g.fillRect(0, 300, 640, 180);
      return c.toDataURL("image/png").split(",")[1];
    });
    await predict(page, { name: "landscape.png", mimeType: "image/png", buffer: Buffer.from(landscape, "base64") });
    assert.match(await page.textContent("#notice"), /No face found in landscape\.png/);
    // A tampered model is refused and the loaded one stays in use.
    const model = Buffer.from(readFileSync(MODEL));
    model[model.length - 1000] ^= 1;
    await page.setInputFiles("#model-file", { name: "tampered.fmtl", mimeType: "application/octet-stream", buffer: model });
    await page.waitForFunction(() => /tampered\.fmtl was refused: .*checksum/.test(document.getElementById("error").textContent));
    await predict(page, join(ROOT, "tests/fixtures/exif_rotated.jpg"));
    assert.equal((await lastResult(page)).faces.length, 1);
    // A model measured on the exact backbone weights runs on the page's int8 ones, and says so.
    const exact = resealModel(readFileSync(MODEL), (h) => delete h.backbone_weights);
    await page.setInputFiles("#model-file", { name: "exact.fmtl", mimeType: "application/octet-stream", buffer: exact });
    await page.waitForFunction(() => /exact\.fmtl was measured with the exact backbone weights; this page runs the int8 ones/.test(document.getElementById("notice").textContent));
    // The camera is refused (no permission in a headless browser without a fake device).
    await page.click("#webcam");
    await page.waitForFunction(() => /camera/i.test(document.getElementById("error").textContent), null, { timeout: 30_000 });
    await page.screenshot({ path: join(ARTIFACTS, "errors.png"), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test("a failed model download says so and the page keeps working", async () => {
  const { page, errors, close } = await open({
    query: "?backend=cpu",
    route: (p) => p.route((url) => url.pathname.endsWith(".fmtl"), (r) => r.fulfill({ status: 503, body: "unavailable" })),
  });
  try {
    await page.waitForFunction(() => /model could not be loaded.*503/.test(document.getElementById("error").textContent), null, { timeout: 120_000 });
    await page.setInputFiles("#file", join(ROOT, "tests/fixtures/exif_rotated.jpg"));
    await page.waitForFunction(() => /still loading|not loaded/.test(document.getElementById("error").textContent));
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test("the webcam mode draws predictions live and measures its frame rate", async () => {
  const { page, errors, close } = await open({
    query: "?backend=cpu",
    args: ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"],
  });
  try {
    await ready(page);
    await page.click("#webcam");
    await page.waitForFunction(() => Number(document.body.dataset.fps) > 0, null, { timeout: 120_000 });
    assert.match(await page.textContent("#fps"), /frames\/s/);
    await page.screenshot({ path: join(ARTIFACTS, "webcam.png") });
    await page.click("#webcam");
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test("the educator panel draws the architecture, the training curves and the group tables", async () => {
  // The shipped model's report, with gender converging at its second epoch: whether the
  // shipped run's tasks converged before its last epoch is the recipe's business, not the panel's.
  const report = JSON.parse(readFileSync(join(ROOT, "models/utkface-celeba-faceres.report.json"), "utf8"));
  for (const row of report.rows) if (row.task === "gender") row.event = row.epoch === 1 ? "converged" : row.epoch > 1 ? "frozen" : "";
  // A group label with markup in it is shown as text: the page builds no HTML from data.
  const MARKUP = '<img src="x" id="injected">';
  report.groups.tables[0].groups[0].label = MARKUP;
  const { page, errors, close } = await open({
    query: "?backend=cpu",
    route: (p) => p.route((url) => url.pathname.endsWith(".report.json"), (r) => r.fulfill({ contentType: "application/json", body: JSON.stringify(report) })),
  });
  try {
    await ready(page);
    await page.waitForSelector("#curves svg");
    assert.equal(await page.locator("#architecture svg rect").count(), 8, "face, backbone, shared layers, 4 heads (gender, age, race, young), Loss Weight Layer");
    assert.ok((await page.locator("#curves svg").count()) >= 4, "loss weights and one curve per task");
    assert.match(await page.textContent("#curves"), /gender: validation loss.*frozen at 1/);
    assert.match(await page.textContent("#groups"), /worst: /);
    assert.ok((await page.textContent("#groups")).includes(MARKUP), "the label's text is shown");
    assert.equal(await page.locator("#injected").count(), 0, "no element was made from the label");
    assert.deepEqual(errors, []);
    await page.screenshot({ path: join(ARTIFACTS, "educator.png"), fullPage: true });
  } finally {
    await close();
  }
});

test("after a redeploy the new model is used, not the one kept in the Cache API", async () => {
  const dir = mkdtempSync(join(tmpdir(), "facemtl-deploy-"));
  cpSync(DIST, dir, { recursive: true });
  const deploy = await serve(dir, 0, "/deploy/");
  const { page, errors, close } = await open({ site: deploy, query: "?backend=cpu" });
  try {
    await ready(page);
    assert.match(await page.textContent("#model-info"), /all 23,707 faces/);
    // The new deployment: another model file under the same name, its manifest rewritten.
    const path = join(dir, "assets/utkface-celeba-faceres.fmtl");
    writeFileSync(path, resealModel(readFileSync(path), (h) => (h.trained_on = "the redeployed model")));
    for (const stale of [`${path}.br`, join(dir, "assets/manifest.json.br")]) rmSync(stale, { force: true });
    await writeManifest(dir);
    await page.reload();
    await ready(page);
    // The returning visitor starts at once with the files kept from the first visit, then
    // swaps in the redeployed model when the new manifest arrives.
    await page.waitForSelector("body[data-current=true]", { timeout: 120_000 });
    assert.match(await page.textContent("#model-info"), /the redeployed model/);
    assert.match(await page.textContent("#notice"), /newer version of the model/);
    const cached = await page.evaluate(async () => (await (await caches.open("facemtl-assets")).keys()).map((r) => r.url));
    assert.equal(cached.filter((url) => url.includes(".fmtl")).length, 1, `the old model is dropped: ${cached}`);
    assert.deepEqual(errors, []);
  } finally {
    await close();
    deploy.server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("both wasm modules say they use WebAssembly SIMD, and ship without their symbol names", () => {
  const html = readFileSync(join(DIST, "index.html"), "utf8");
  const modules = readdirSync(DIST).filter((f) => f.endsWith("_bg.wasm"));
  assert.equal(modules.length, 2, `the full and the CPU module: ${modules}`);
  for (const wasm of modules) {
    const bytes = readFileSync(join(DIST, wasm));
    const sections = wasmSections(bytes);
    const features = sections.find((s) => s.name === "target_features");
    assert.ok(features, `${wasm}: a target_features section`);
    assert.match(bytes.subarray(features.start, features.end).toString("latin1"), /\+\x07simd128/);
    assert.equal(sections.filter((s) => s.name === "name").length, 0, `${wasm}: no name section`);
    assert.ok(html.includes(`sha384-${createHash("sha384").update(bytes).digest("base64")}`), `index.html's integrity hash is ${wasm}'s`);
  }
});

test("a returning visitor starts from the Cache API without waiting for the network", async () => {
  const { page, errors, close } = await open({ query: "?backend=cpu" });
  try {
    await ready(page);
    assert.equal(await page.getAttribute("body", "data-assets"), "downloaded");
    await page.waitForSelector("body[data-current=true]");
    // The second visit: the server answers nothing for a while (a slow network); the page
    // is ready anyway, from the files and the manifest kept at the first visit.
    let held = 0;
    await page.route("**/*", async (route) => {
      if (new URL(route.request().url()).pathname.includes("/assets/")) {
        held += 1;
        await new Promise((wait) => setTimeout(wait, 20_000));
      }
      await route.continue().catch(() => {});
    });
    const started = Date.now();
    await page.reload();
    await ready(page);
    const waited = Date.now() - started;
    assert.equal(await page.getAttribute("body", "data-assets"), "kept");
    assert.ok(waited < 20_000, `ready after ${waited} ms, so it waited for the network`);
    assert.ok(held >= 1, "the manifest is still asked of the server");
    assert.match(await page.textContent("#downloads"), /\(cached\)/);
    await page.unroute("**/*");
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test("a model file over the size limit is refused before it is read into WebAssembly memory", async () => {
  const { page, errors, close } = await open({ query: "?backend=cpu" });
  try {
    await ready(page);
    const before = await page.evaluate(() => wasmBindings.App.memory_bytes());
    await page.evaluate(() => {
      const data = new DataTransfer();
      data.items.add(new File([new Uint8Array(100 * 1000 * 1000)], "huge.fmtl"));
      const input = document.getElementById("model-file");
      input.files = data.files;
      input.dispatchEvent(new Event("change"));
    });
    await page.waitForFunction(() => /huge\.fmtl was refused: it is 100 MB/.test(document.getElementById("error").textContent));
    assert.equal(await page.evaluate(() => wasmBindings.App.memory_bytes()), before, "wasm memory did not grow");
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test("a 48-megapixel photo gets its answer, shown on a canvas iOS Safari can draw", async (t) => {
  if (skipWithoutData(t)) return;
  const { page, errors, close } = await open({ query: "?backend=cpu" });
  try {
    await ready(page);
    // A face photo scaled up to 8000 x 6000, made and encoded in the page.
    const face = readFileSync(photos()[0]).toString("base64");
    await page.evaluate(async (face) => {
      const img = new Image();
      img.src = `data:image/jpeg;base64,${face}`;
      await img.decode();
      const canvas = new OffscreenCanvas(8000, 6000);
      const g = canvas.getContext("2d");
      g.fillStyle = "#888";
      g.fillRect(0, 0, 8000, 6000);
      g.drawImage(img, 2500, 1500, 3000, 3000);
      const blob = await canvas.convertToBlob({ type: "image/jpeg", quality: 0.9 });
      const data = new DataTransfer();
      data.items.add(new File([blob], "big-photo.jpg", { type: "image/jpeg" }));
      document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
    }, face);
    await page.waitForSelector("body[data-predictions='1']", { timeout: 180_000 });
    const result = await lastResult(page);
    assert.deepEqual([result.width, result.height], [8000, 6000]);
    assert.equal(result.faces.length, 1);
    const [w, h] = await page.evaluate(() => [document.getElementById("canvas").width, document.getElementById("canvas").height]);
    assert.ok(w * h <= 4096 * 4096 && w > 4000, `canvas ${w}x${h}`);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

/// `jpeg` with an EXIF segment saying it is to be shown turned by `orientation` (6: a quarter
/// turn clockwise, as a phone held upright writes it).
function withOrientation(jpeg, orientation) {
  const tiff = Buffer.alloc(26);
  tiff.write("II*\0", 0, "latin1");
  tiff.writeUInt32LE(8, 4); // the first directory
  tiff.writeUInt16LE(1, 8); // one entry: Orientation, SHORT, 1 value
  tiff.writeUInt16LE(0x0112, 10);
  tiff.writeUInt16LE(3, 12);
  tiff.writeUInt32LE(1, 14);
  tiff.writeUInt16LE(orientation, 18);
  const body = Buffer.concat([Buffer.from("Exif\0\0", "latin1"), tiff]);
  const segment = Buffer.alloc(4);
  segment.writeUInt16BE(0xffe1, 0);
  segment.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([jpeg.subarray(0, 2), segment, body, jpeg.subarray(2)]);
}

test("a 4000x3000 phone photo turned by EXIF gets its answer, and the page's memory stays bounded", async (t) => {
  if (skipWithoutData(t)) return;
  const { page, errors, close } = await open({ query: "?backend=cpu" });
  try {
    await ready(page);
    const loaded = await page.evaluate(() => wasmBindings.App.memory_bytes());
    // Stored as the sensor saw it, 4000 wide: the face lies on its side until the EXIF
    // orientation turns the photo upright, 3000 x 4000.
    const face = readFileSync(photos()[0]).toString("base64");
    const sideways = await page.evaluate(async (face) => {
      const img = new Image();
      img.src = `data:image/jpeg;base64,${face}`;
      await img.decode();
      const canvas = new OffscreenCanvas(4000, 3000);
      const g = canvas.getContext("2d");
      g.fillStyle = "#7a8088";
      g.fillRect(0, 0, 4000, 3000);
      g.translate(2000, 1500);
      g.rotate(-Math.PI / 2);
      g.drawImage(img, -700, -700, 1400, 1400);
      const blob = await canvas.convertToBlob({ type: "image/jpeg", quality: 0.9 });
      const bytes = new Uint8Array(await blob.arrayBuffer());
      let text = "";
      for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      return btoa(text);
    }, face);
    const photo = withOrientation(Buffer.from(sideways, "base64"), 6);
    await page.setInputFiles("#file", { name: "phone-photo.jpg", mimeType: "image/jpeg", buffer: photo });
    await page.waitForSelector("body[data-predictions='1']", { timeout: 180_000 });
    const result = await lastResult(page);
    assert.deepEqual([result.width, result.height], [3000, 4000], "turned upright by its EXIF orientation");
    assert.equal(result.faces.length, 1, "the face, upright, is found");
    const peak = await page.evaluate(() => wasmBindings.App.memory_bytes());
    console.log(`phone photo 4000x3000 (EXIF 6), ${photo.length} bytes: wasm memory ${(loaded / 1e6).toFixed(1)} MB loaded, ${(peak / 1e6).toFixed(1)} MB after (its peak: the memory never shrinks)`);
    // The decoded photo is 36 MB as RGB; far under what a phone's tab may hold.
    assert.ok(peak < 512e6, `wasm memory ${peak}`);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

for (const [name, viewport, mobile] of [
  ["phone", { width: 390, height: 844 }, true],
  ["desktop", { width: 1366, height: 900 }, false],
]) {
  test(`at ${name} size (${viewport.width}x${viewport.height}) the page fits the screen and shows its answer`, async (t) => {
    if (skipWithoutData(t)) return;
    const { page, errors, close } = await open({ query: "?backend=cpu", viewport, mobile, scale: mobile ? 3 : 1 });
    try {
      await ready(page);
      await page.screenshot({ path: join(ARTIFACTS, `${name}-ready.png`), scale: "css" });
      await predict(page, join(DIST, "assets/samples/sample2.jpg"));
      const layout = await page.evaluate(() => ({
        page: document.scrollingElement.scrollWidth,
        canvas: document.getElementById("canvas").getBoundingClientRect().width,
        rows: document.querySelectorAll("#results tbody tr").length,
        tallest: Math.max(...[...document.querySelectorAll("#results tbody tr")].map((r) => r.getBoundingClientRect().height)),
        font: parseFloat(getComputedStyle(document.querySelector("#results td")).fontSize),
      }));
      assert.ok(layout.page <= viewport.width, `the page is ${layout.page} px wide, the screen ${viewport.width}`);
      assert.ok(layout.canvas > 0 && layout.canvas <= viewport.width, `the photo is shown ${layout.canvas} px wide`);
      assert.ok(layout.rows >= 1, "a row per face");
      // A face's answers stay on one line (a class of five labels shows its likeliest one, the
      // rest on demand; on a phone the table scrolls rather than wrap): no row is two lines tall.
      assert.ok(layout.tallest < 1.8 * layout.font + 8, `the tallest row is ${layout.tallest} px, the font ${layout.font} px`);
      await page.locator("#canvas").scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(ARTIFACTS, `${name}-answer.png`), scale: "css" });
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });
}

test("a model loaded while a WebGPU prediction reads back does not mix with that prediction", async (t) => {
  if (skipWithoutData(t)) return;
  const { page, errors, close } = await open({ webgpu: true, query: "?backend=webgpu" });
  try {
    await ready(page);
    // The same photo under new names each time: a file input fires no change for the same file.
    const bytes = readFileSync(photos()[0]);
    const face = (name) => ({ name, mimeType: "image/jpeg", buffer: bytes });
    await predict(page, face("first.jpg"));
    const years = (await lastResult(page)).faces[0].age.years;
    const older = resealModel(readFileSync(MODEL), (h) => olderBy30(h.tasks.find((t) => t.name === "age").kind));
    // The prediction starts, and while it waits on the GPU, a model predicting 30 years more
    // is loaded: the prediction ends with the model it started with.
    await page.setInputFiles("#file", face("during.jpg"));
    await page.waitForTimeout(300);
    await page.setInputFiles("#model-file", { name: "older.fmtl", mimeType: "application/octet-stream", buffer: older });
    await page.waitForFunction(() => document.body.dataset.predictions === "2" || document.getElementById("error").textContent, null, { timeout: 180_000 });
    assert.equal(await page.textContent("#error"), "");
    assert.match(await page.textContent("#model-info"), /tasks gender, age, race/);
    const during = (await lastResult(page)).faces[0].age.years;
    assert.ok(Math.abs(during - years) < 0.01, `${during} vs ${years}: the prediction mixed two models`);
    await predict(page, face("after.jpg"));
    const after = (await lastResult(page)).faces[0].age.years;
    assert.ok(Math.abs(after - years - 30) < 0.01, `${after}: the new model is used from then on`);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

// Soak: long use must not grow WebAssembly memory (which never shrinks) without bound. CI
// runs 200 predictions and a minute of webcam; `bench/soak.sh` runs the webcam for 5 minutes
// (FACEMTL_SOAK_WEBCAM_S=300) and keeps the figures.
const SOAK_PREDICTIONS = Number(process.env.FACEMTL_SOAK_PREDICTIONS || 200);
const SOAK_WEBCAM_S = Number(process.env.FACEMTL_SOAK_WEBCAM_S || 60);

test("soak: hundreds of predictions and minutes of webcam on the CPU fallback, with memory levelling off", async (t) => {
  if (skipWithoutData(t)) return;
  // The fake camera shows real faces: a gallery photo played as a motion-JPEG stream.
  const video = join(mkdtempSync(join(tmpdir(), "facemtl-camera-")), "faces.mjpeg");
  writeFileSync(video, readFileSync(join(DIST, "assets/samples/sample1.jpg")));
  const { page, errors, close } = await open({
    query: "?backend=cpu",
    args: ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", `--use-file-for-fake-video-capture=${video}`],
  });
  const memory = () => page.evaluate(() => wasmBindings.App.memory_bytes());
  const figures = { predictions: SOAK_PREDICTIONS, webcam_seconds: SOAK_WEBCAM_S, memory_mb: {} };
  const mb = (bytes) => Math.round(bytes / 1e4) / 100;
  try {
    await ready(page);
    figures.memory_mb.loaded = mb(await memory());
    const files = photos();
    const started = Date.now();
    for (let i = 0; i < SOAK_PREDICTIONS; i++) {
      await predict(page, files[i % files.length]);
      if (i === 19) figures.memory_mb.after_20_predictions = mb(await memory());
    }
    figures.prediction_seconds = (Date.now() - started) / 1000;
    figures.memory_mb[`after_${SOAK_PREDICTIONS}_predictions`] = mb(await memory());
    await page.click("#webcam");
    const samples = [];
    for (let s = 0; s < SOAK_WEBCAM_S; s += 10) {
      await page.waitForTimeout(10_000);
      samples.push(mb(await memory()));
    }
    const fps = Number(await page.getAttribute("body", "data-fps"));
    const faces = (await lastResult(page)).faces.length;
    const run = await page.evaluate(() => ({ ...window.facemtlWebcam, stream: undefined }));
    await page.click("#webcam");
    figures.webcam = {
      frames_per_second: fps,
      faces_in_last_frame: faces,
      faces_shown: run.faces,
      faces_computed: run.computed,
      memory_mb_every_10_s: samples,
    };
    writeFileSync(join(ARTIFACTS, "soak.json"), JSON.stringify(figures, null, 2));
    console.log(JSON.stringify(figures));
    assert.ok(faces >= 1, "the fake camera's faces are found");
    assert.ok(fps > 1, `${fps} frames/s`);
    // Faces that stay in place keep what was said of them: about one frame in ten goes
    // through the backbone.
    assert.ok(run.computed > 0 && run.computed * 4 < run.faces, `${run.computed} of ${run.faces} faces computed`);
    // Levelled off: after the warm-up, the memory stays where it was.
    const warm = figures.memory_mb.after_20_predictions;
    for (const later of [figures.memory_mb[`after_${SOAK_PREDICTIONS}_predictions`], ...samples]) {
      assert.ok(later <= warm + 8, `memory grew from ${warm} MB to ${later} MB`);
    }
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});
