// The Lab in the real browser: a run trained in the page's Web Worker reaches the native
// trainer's validation figures on the same Lab file, seed and settings; Early Freeze's events
// come in order; pause and resume lose nothing; the downloaded model predicts natively as it
// does in the page; no request leaves the origin. On the CPU fallback and on WebGPU.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { serve } from "../../web/serve.mjs";
import { FIRST_EPOCH_GAP, disagreement, firstEpochGap, nativeLosses, pageLosses, replay, sideBySide } from "./agreement.mjs";
import { launch, ready } from "./browser.mjs";
import { withHeader } from "./files.mjs";

const ROOT = resolve(import.meta.dirname, "../..");
const DIST = join(ROOT, "dist");
const LAB_FILE = join(DIST, "assets/lab/lab.fml");
const DATA = process.env.FACEMTL_DATA || resolve(ROOT, "../shared/data");
const BIN = process.env.FACEMTL_BIN;
const FACE = join(DATA, "utkface/UTKFace/35_1_2_20170103182708145.jpg.chip.jpg");
// A command that runs the native binary on another vector path than this CPU's own (for example
// `qemu-x86_64 -cpu Haswell-v4` on an AVX-512 machine): the Lab's run is then compared with the
// native trainer there too. scripts/test.sh sets it.
const OTHER_PATH = process.env.FACEMTL_NATIVE_OTHER_PATH?.split(" ").filter(Boolean) ?? [];

let site;
before(async () => {
  assert.ok(existsSync(LAB_FILE), "dist/assets/lab/lab.fml is missing: build the app first (scripts/web.sh)");
  site = await serve(DIST, 0, "/lab/prefix/");
});
after(() => site?.server.close());

function skipWithoutBinary(t) {
  if (!BIN || !existsSync(FACE)) {
    assert.notEqual(process.env.FACEMTL_REQUIRE_DATA, "1", `FACEMTL_REQUIRE_DATA=1, but FACEMTL_BIN or ${DATA} is missing`);
    t.skip("no native binary or data sets");
    return true;
  }
  return false;
}

async function openLab(backend) {
  const session = await launch(site.url, { query: `?backend=${backend}`, webgpu: backend === "webgpu" });
  await ready(session.page);
  assert.equal(await session.page.getAttribute("body", "data-lab-state"), null, "the Lab is not loaded before it is opened");
  assert.ok(!session.requests.some((r) => r.url.includes("lab.fml")), "the Lab's data is not part of the first page load");
  await session.page.click("#lab-open");
  await session.page.waitForSelector("body[data-lab-state=idle]", { timeout: 120_000 });
  assert.match(await session.page.textContent("#lab-licence"), /non-commercial research/);
  return session;
}

const labState = (page) => page.getAttribute("body", "data-lab-state");
const epochsDone = (page) => page.evaluate(() => window.facemtlLab.runs.at(-1).reports.length);

async function finished(page, timeout = 300_000) {
  await page.waitForFunction(() => document.body.dataset.labState === "finished", null, { timeout });
  return page.evaluate(() => window.facemtlLab.runs.at(-1));
}

/// "Use this model" switches the page to the run's network at once; "Download model" writes a
/// file with which the native `predict` and `eval` answer as the page does.
async function roundTrip(page) {
  await page.click("#lab-use");
  await page.waitForFunction(() => /trained in the browser/.test(document.getElementById("model-info").textContent));
  const download = page.waitForEvent("download");
  await page.click("#lab-download");
  const dir = mkdtempSync(join(tmpdir(), "facemtl-lab-model-"));
  const file = join(dir, "lab.fmtl");
  await (await download).saveAs(file);
  await page.setInputFiles("#file", FACE);
  await page.waitForFunction(() => window.facemtlLast?.faces?.length > 0, null, { timeout: 300_000 });
  const browser = (await page.evaluate(() => window.facemtlLast)).faces[0];
  const cli = (args) => execFileSync(BIN, ["--backend", "cpu", ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, FACEMTL_DATA: DATA } });
  const native = JSON.parse(cli(["predict", "--model", file, FACE]).trim().split("\n")[0]);
  const close = (a, b, limit, what) => assert.ok(Math.abs(a - b) < limit, `${what}: page ${a}, native ${b}`);
  close(browser.female_probability, native.female_probability, 0.02, "female probability");
  if (native.age) close(browser.age.years, native.age.years, 0.5, "age");
  if (native.young_probability !== undefined) close(browser.young_probability, native.young_probability, 0.02, "young probability");
  (native.race || []).forEach(([name, p], i) => close(browser.race[i][1], p, 0.02, `race ${name}`));
  // `eval` reads the file too (on its data set's first test faces).
  const set = native.age ? ["--dataset", "utkface", "--protocol", "all-ages"] : ["--dataset", "celeba"];
  const evaluated = JSON.parse(cli(["eval", "--model", file, ...set, "--limit", "50"]));
  assert.ok(evaluated.length > 0 && evaluated.every((e) => e.faces === 50 && Number.isFinite(e.metric)), "eval reads the file");
  rmSync(dir, { recursive: true, force: true });
}

/// The native trainer on the same Lab file with the run's settings (run by `wrapper`, when
/// given, on another vector path): its result and its validation losses per epoch and task.
function nativeRun(run, set, wrapper = []) {
  const s = run.request.settings;
  const dir = mkdtempSync(join(tmpdir(), "facemtl-lab-native-"));
  const dataset = set === "celeba" ? ["--dataset", "celeba"] : ["--dataset", "utkface", "--protocol", "all-ages"];
  const flags = [
    ...["--lab", LAB_FILE, ...dataset, "--backend", "cpu", "--run-dir", dir],
    ...["--weighting", s.weighting, "--lambda", s.lambda, "--freeze-mode", s.freeze_mode, "--patience", s.patience],
    ...["--lr", s.lr, "--weight-decay", s.weight_decay, "--lr-patience", s.lr_patience, "--batch-size", s.batch_size],
    ...["--max-epochs", s.max_epochs, "--seed", s.seed, "--head-hidden", s.head_hidden, "--dropout", s.dropout],
    ...["--shared", s.shared.join(",")],
  ].map(String);
  const [command, ...args] = [...wrapper, BIN, "train", ...flags];
  execFileSync(command, args, { stdio: "ignore" });
  const result = JSON.parse(readFileSync(join(dir, "result.json"), "utf8"));
  const losses = nativeLosses(readFileSync(join(dir, "metrics.csv"), "utf8"), run.request.tasks);
  rmSync(dir, { recursive: true, force: true });
  return { ...result, losses };
}

const diagnose = (t, text) => text.split("\n").forEach((line) => t.diagnostic(line));

/// The page's run trains as the native trainer does on the same Lab file (see agreement.mjs):
/// the same first epoch as far as float order allows, the same Early Freeze events in the same
/// order within the epoch float order can move them, and validation figures within 1 point of
/// accuracy and half a year of MAE (measured spread over the page, three native vector paths and
/// 24 native runs with the learning rate moved by 1e-6 to 2.4e-5 of itself: 0.8 points and 0.22
/// years; docs/lab-agreement.md).
function assertTrainsLikeNative(t, run, native, what) {
  const { tasks, settings } = run.request;
  const page = pageLosses(run);
  diagnose(t, `${what}, validation losses per epoch (page / native):\n${sideBySide(page, native.losses, tasks)}`);
  const why = disagreement(page, native.losses, tasks, settings.patience);
  assert.equal(why, null, `${what}: ${why}`);
  assertClose(run.results.val.metrics, native.val.metrics, tasks, what);
}

/// Within 1 point: a percentage point of accuracy; MAE within half a year. Both sides start from
/// the same weights and drop the same units (drawn on the host from the seed), so only float
/// rounding and summation order on each backend part them, amplified by training.
function assertClose(browser, native, tasks, what) {
  tasks.forEach((task, i) => {
    const [b, n] = [browser[i], native[i]];
    const [gap, limit] = task === "age" ? [Math.abs(b - n), 0.5] : [100 * Math.abs(b - n), 1];
    assert.ok(gap <= limit, `${what} ${task}: browser ${b}, native ${n}`);
  });
}

/// Early Freeze's events in order: each task converges once, `patience` epochs after its best,
/// only the first convergence freezes the shared layers, and a converged task trains no more.
function assertFreezeOrder(run) {
  const { patience, freeze_mode } = run.request.settings;
  const converged = run.reports.flatMap((r) => r.events.filter((e) => e.Converged).map((e) => ({ epoch: r.rows[0].epoch, ...e.Converged })));
  assert.ok(converged.length > 0, "Early Freeze fired");
  assert.equal(new Set(converged.map((c) => c.task)).size, converged.length, "each task converges once");
  converged.forEach((c, i) => {
    assert.ok(c.epoch >= c.restore_epoch + patience, `task ${c.task} converged at ${c.epoch}, ${patience} epochs after its best ${c.restore_epoch}`);
    assert.equal(c.freeze_shared, freeze_mode === "early-freeze" && i === 0, "the shared layers freeze with the first converged task only");
    if (i > 0) assert.ok(c.epoch >= converged[i - 1].epoch, "in epoch order");
    const later = run.reports.filter((r) => r.rows[0].epoch > c.epoch).map((r) => r.rows[c.task].event);
    assert.ok(later.every((e) => e === "frozen"), `task ${c.task} is frozen after it converged`);
  });
  const epochs = run.reports.map((r) => r.rows[0].epoch);
  assert.deepEqual(epochs, epochs.map((_, i) => i), "every epoch once, in order");
  // The replay the comparison with the native run relies on converges where the run did.
  const replayed = replay(pageLosses(run), patience).tasks;
  converged.forEach((c) => assert.deepEqual([replayed[c.task].converged, replayed[c.task].bestEpoch], [c.epoch, c.restore_epoch], "replayed as it ran"));
}

test("a Lab run on the CPU, paused and resumed, reaches the native trainer's figures; Early Freeze fires in order; two runs overlay", async (t) => {
  if (skipWithoutBinary(t)) return;
  const { page, requests, errors, close } = await openLab("cpu");
  try {
    await page.click("#lab-train");
    await page.waitForFunction(() => window.facemtlLab.runs.at(-1)?.reports.length >= 3, null, { timeout: 60_000 });
    // The page answers while the worker trains: a timer fires on time.
    const lag = await page.evaluate(() => new Promise((r) => { const t0 = performance.now(); setTimeout(() => r(performance.now() - t0 - 50), 50); }));
    assert.ok(lag < 100, `the page stays responsive while training (a 50 ms timer ran ${lag.toFixed(0)} ms late)`);
    await page.click("#lab-pause");
    await page.waitForSelector("body[data-lab-state=paused]");
    const paused = await epochsDone(page);
    await page.waitForTimeout(1500);
    assert.equal(await epochsDone(page), paused, "no epoch runs while paused");
    await page.click("#lab-resume");
    const run = await finished(page);
    assert.ok(run.reports.length > paused, "training went on after resume");
    assertFreezeOrder(run);
    const native = nativeRun(run, run.request.set);
    assertTrainsLikeNative(t, run, native, "native");
    if (OTHER_PATH.length) {
      const other = nativeRun(run, run.request.set, OTHER_PATH);
      assertTrainsLikeNative(t, run, other, `native under ${OTHER_PATH.join(" ")}`);
      const why = disagreement(native.losses, other.losses, run.request.tasks, run.request.settings.patience);
      assert.equal(why, null, `native on two vector paths: ${why}`);
    }
    // The group tables of the test faces are shown.
    assert.match(await page.textContent("#lab-groups"), /Gender accuracy per race/);
    // Unpaused, the same run gives the very same losses: a pause loses and repeats nothing.
    await page.click("#lab-train");
    assert.deepEqual(pageLosses(await finished(page)), pageLosses(run), "a paused run trains as an unpaused one, bit for bit");
    // A third run, with average loss weights, is drawn over the second.
    await page.selectOption("#lab-weighting", "average");
    await page.click("#lab-train");
    assertFreezeOrder(await finished(page));
    assert.match(await page.textContent("#lab-charts"), /the previous run, gender\+age\+race, learned/, "the previous run is overlaid");
    assert.deepEqual(errors, []);
    const origin = new URL(site.url).origin;
    assert.deepEqual(requests.filter((r) => !r.url.startsWith(origin) && !r.url.startsWith("blob:")), [], "no request leaves the origin");
  } finally {
    await close();
  }
});

test("a model trained in the Lab is used at once, and downloaded it predicts natively as in the page", async (t) => {
  if (skipWithoutBinary(t)) return;
  const { page, errors, close } = await openLab("cpu");
  try {
    await page.selectOption("#lab-set", "utkface-all-ages");
    await page.fill("#lab-epochs", "4");
    await page.click("#lab-train");
    await finished(page);
    await roundTrip(page);
    await page.click("#lab-reset");
    await page.waitForSelector("body[data-lab-state=idle]");
    assert.equal(await page.evaluate(() => window.facemtlLab.runs.length), 0, "reset drops the run");
    assert.ok(await page.isDisabled("#lab-use"), "nothing to use after a reset");
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test("on WebGPU (SwiftShader) a Lab run pauses and resumes, reaches the native trainer's figures, and its model round-trips", async (t) => {
  if (skipWithoutBinary(t)) return;
  const { page, requests, errors, close } = await openLab("webgpu");
  try {
    assert.match(await page.textContent("#lab-status"), /WebGPU/);
    // SwiftShader runs WebGPU on the CPU, about 30 s per CelebA epoch here: two epochs.
    await page.selectOption("#lab-set", "celeba");
    await page.fill("#lab-epochs", "2");
    await page.click("#lab-train");
    // Paused during the first epoch: a pause during the last one would end in "finished".
    await page.waitForSelector("body[data-lab-state=running]", { timeout: 60_000 });
    await page.click("#lab-pause");
    await page.waitForSelector("body[data-lab-state=paused]", { timeout: 300_000 });
    const paused = await epochsDone(page);
    await page.waitForTimeout(1000);
    assert.equal(await epochsDone(page), paused, "no epoch runs while paused");
    await page.click("#lab-resume");
    const run = await finished(page, 600_000);
    assert.deepEqual(run.reports.map((r) => r.rows[0].epoch), [0, 1], "every epoch once");
    const native = nativeRun(run, "celeba");
    diagnose(t, `WebGPU, validation losses per epoch (page / native):\n${sideBySide(pageLosses(run), native.losses, run.request.tasks)}`);
    // Two epochs: too few for Early Freeze, enough to see the same first epoch (measured gap
    // on SwiftShader: 7e-8).
    const gap = firstEpochGap(pageLosses(run), native.losses);
    assert.ok(gap <= FIRST_EPOCH_GAP, `WebGPU's first epoch parts from the native one by ${gap}`);
    assertClose(run.results.val.metrics, native.val.metrics, run.request.tasks, "WebGPU");
    await roundTrip(page);
    assert.deepEqual(errors, []);
    const origin = new URL(site.url).origin;
    assert.deepEqual(requests.filter((r) => !r.url.startsWith(origin) && !r.url.startsWith("blob:")), [], "no request leaves the origin");
  } finally {
    await close();
  }
});

test("a crafted Lab file is refused in the page with its reason, and the page goes on working", async () => {
  // As a deployment could serve it, its manifest naming its sha256: an age distribution over a
  // billion values (the page died with "unreachable"), and features narrower than the backbone's.
  for (const [what, edit, reason] of [
    ["1e9 values", (h) => (h.sets[0].tasks.find((t) => t.name === "age").kind = { distribution: { low: 0, high: 1e9, sigma: 2 } }), /distribution over 0..=1000000000/],
    ["3 features", (h) => (h.dim = 3), /3 features per face/],
  ]) {
    const crafted = withHeader(readFileSync(LAB_FILE), edit);
    const hash = createHash("sha256").update(crafted).digest("hex");
    const manifest = JSON.parse(readFileSync(join(DIST, "assets/manifest.json"), "utf8"));
    manifest["lab/lab.fml"] = hash;
    const route = async (page) => {
      await page.route((url) => url.pathname.endsWith("assets/manifest.json"), (r) => r.fulfill({ contentType: "application/json", body: JSON.stringify(manifest) }));
      await page.route((url) => url.pathname.endsWith("lab/lab.fml"), (r) => r.fulfill({ contentType: "application/octet-stream", body: crafted }));
    };
    const { page, errors, close } = await launch(site.url, { query: "?backend=cpu", route });
    try {
      await ready(page);
      await page.click("#lab-open");
      await page.waitForFunction(() => /The Lab could not be opened/.test(document.getElementById("error").textContent), null, { timeout: 60_000 });
      assert.match(await page.textContent("#error"), reason, what);
      assert.equal(await page.isDisabled("#lab-open"), false, `${what}: the Lab can be opened again`);
      assert.deepEqual(errors, [], what);
    } finally {
      await close();
    }
  }
});
