// Real-browser tests of the app: Debian's headless Chromium, driven by playwright-core, against
// the trunk build in dist/ served on 127.0.0.1 under a path prefix (compressed, as a static host).
// The predictions must agree with the native `facemtl predict` on the same photos.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { crc32, deflateSync } from "node:zlib";
import { chromium } from "playwright-core";
import { serve } from "../../web/serve.mjs";

const ROOT = resolve(import.meta.dirname, "../..");
const DIST = join(ROOT, "dist");
const MODEL = join(ROOT, "models/utkface-allages-faceres.fmtl");
const ARTIFACTS = join(import.meta.dirname, "artifacts");
const DATA = process.env.FACEMTL_DATA || resolve(ROOT, "../shared/data");
const BIN = process.env.FACEMTL_BIN;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const FLAGS = ["--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

// Three UTKFace faces (one per gender and a child) and a group photo of the gallery.
const UTK = ["26_0_0_20170102233359482.jpg.chip.jpg", "35_1_2_20170103182708145.jpg.chip.jpg", "8_1_0_20161220223020578.jpg.chip.jpg"];
const photos = () => [...UTK.map((f) => join(DATA, "utkface/UTKFace", f)), join(DIST, "assets/samples/sample2.jpg")];

let site;
before(async () => {
  assert.ok(existsSync(join(DIST, "index.html")), "dist/ is missing: build the app first (scripts/web.sh)");
  site = await serve(DIST, 0, "/some/prefix/");
  mkdirSync(ARTIFACTS, { recursive: true });
});
after(() => site?.server.close());

async function open(options = {}) {
  const args = [...FLAGS, ...(options.webgpu ? ["--enable-unsafe-webgpu"] : []), ...(options.args || [])];
  const dir = join(tmpdir(), `facemtl-chromium-${process.pid}-${Date.now()}`);
  const context = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args });
  const page = context.pages()[0] || (await context.newPage());
  const requests = [];
  page.on("request", (r) => requests.push({ url: r.url(), method: r.method() }));
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  if (options.route) await options.route(page);
  await page.goto(site.url + (options.query || ""));
  return {
    page,
    requests,
    errors,
    close: async () => {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function ready(page) {
  await page.waitForSelector("body[data-ready=true]", { timeout: 120_000 });
}

async function predict(page, file) {
  const before = Number((await page.getAttribute("body", "data-predictions")) || 0);
  await page.setInputFiles("#file", file);
  await page.waitForSelector(`body[data-predictions='${before + 1}']`, { timeout: 180_000 });
}

function native(files) {
  const out = execFileSync(BIN, ["predict", "--model", MODEL, ...files], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  const byFile = new Map();
  for (const line of out.trim().split("\n")) {
    const face = JSON.parse(line);
    if (!byFile.has(face.file)) byFile.set(face.file, []);
    if (!face.error) byFile.get(face.file).push(face);
  }
  return byFile;
}

const top = (race) => [...race].sort((a, b) => b[1] - a[1])[0][0];

function agree(browserFaces, nativeFaces, what) {
  assert.equal(browserFaces.length, nativeFaces.length, `${what}: faces found`);
  browserFaces.forEach((b, i) => {
    const n = nativeFaces[i];
    assert.equal(b.female_probability >= 0.5, n.female_probability >= 0.5, `${what} face ${i}: gender`);
    assert.ok(Math.abs(b.age.years - n.age.years) <= 1, `${what} face ${i}: age ${b.age.years} vs ${n.age.years}`);
    assert.equal(top(b.race), top(n.race), `${what} face ${i}: race`);
  });
}

async function lastResult(page) {
  return page.evaluate(() => window.facemtlLast);
}

async function checkAgainstNative(page, files, label) {
  const expected = native(files);
  for (const file of files) {
    await predict(page, file);
    const result = await lastResult(page);
    agree(result.faces, expected.get(file), `${label} ${file.split("/").pop()}`);
    assert.ok(result.faces.length > 0, `${label}: a face in ${file}`);
    const rows = await page.locator("#results tbody tr").count();
    assert.equal(rows, result.faces.length, "one table row per face");
  }
}

function skipWithoutData(t) {
  if (!BIN || !existsSync(join(DATA, "utkface/UTKFace"))) {
    console.log(`SKIP: browser agreement tests need FACEMTL_BIN and the data sets in ${DATA}`);
    t.skip("no data sets or native binary");
    return true;
  }
  return false;
}

test("without WebGPU the CPU fallback runs, and agrees with the native predict", async (t) => {
  if (skipWithoutData(t)) return;
  const served = site.log.length;
  const { page, requests, errors, close } = await open();
  try {
    await ready(page);
    // Everything a visitor downloads, compressed as served, fits in 10 MB.
    const downloaded = site.log.slice(served).reduce((sum, r) => sum + r.bytes, 0);
    assert.ok(downloaded > 1e6 && downloaded <= 10e6, `${downloaded} bytes downloaded`);
    assert.match(await page.textContent("#backend"), /CPU/);
    await checkAgainstNative(page, photos(), "cpu");
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

test("WebGPU (SwiftShader) runs when offered, and agrees with the native predict", async (t) => {
  if (skipWithoutData(t)) return;
  const { page, errors, close } = await open({ webgpu: true, query: "?backend=webgpu" });
  try {
    await ready(page);
    assert.match(await page.textContent("#backend"), /WebGPU/);
    await checkAgainstNative(page, photos().slice(0, 1), "webgpu");
    await page.screenshot({ path: join(ARTIFACTS, "webgpu-photo.png"), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

function hugePng() {
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(20000, 0);
  ihdr.writeUInt32BE(20000, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(Buffer.alloc(100))), chunk("IEND", Buffer.alloc(0))]);
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
    await error({ name: "huge.png", mimeType: "image/png", buffer: hugePng() }, /huge\.png: .*(large|pixels|side)/i);
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
    route: (p) => p.route("**/*.fmtl", (r) => r.fulfill({ status: 503, body: "unavailable" })),
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
  const { page, close } = await open({ query: "?backend=cpu" });
  try {
    await ready(page);
    await page.waitForSelector("#curves svg");
    assert.equal(await page.locator("#architecture svg rect").count(), 7, "face, backbone, shared layers, 3 heads, Loss Weight Layer");
    assert.ok((await page.locator("#curves svg").count()) >= 4, "loss weights and one curve per task");
    assert.match(await page.textContent("#curves"), /frozen at \d+/);
    assert.match(await page.textContent("#groups"), /worst: /);
    await page.screenshot({ path: join(ARTIFACTS, "educator.png"), fullPage: true });
  } finally {
    await close();
  }
});
