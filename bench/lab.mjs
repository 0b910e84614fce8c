// Benchmark of the Lab (BENCHMARKS.md "The Lab"): in Debian's headless Chromium on this
// machine, what opening the Lab downloads (as served), and per backend the seconds per epoch
// over the Lab's UTKFace set and a whole run of 30 epochs (patience 30, so that Early Freeze
// does not end it early). The CPU run is also photographed in progress, and then with a second
// run overlaid (bench/screenshots/lab-*.png). WebGPU is SwiftShader here, which runs on the CPU:
// $WEBGPU_EPOCHS epochs (default 2) are measured and the run's time is given per epoch. Each
// browser run's validation figures stand beside the native `facemtl train --lab` run's with the
// same settings.
// Usage (after scripts/web.sh's web_build): FACEMTL_BIN=... node bench/lab.mjs > bench/lab.json
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { serve } from "../web/serve.mjs";
import { launch, ready } from "../tests/browser/browser.mjs";

const ROOT = resolve(import.meta.dirname, "..");
const DIST = join(ROOT, "dist");
const SHOTS = join(ROOT, "bench/screenshots");
const site = await serve(DIST, 0, "/bench/", { log: true });

const served = (path) => statSync(join(DIST, `${path}.br`)).size;
const BIN = process.env.FACEMTL_BIN;
if (!BIN) throw new Error("FACEMTL_BIN: the native binary, for the runs compared");

/// The native run of `settings` on the same Lab file: its validation figures.
function native(settings) {
  const dir = mkdtempSync(join(tmpdir(), "facemtl-lab-bench-"));
  const s = settings;
  const flags = ["train", "--backend", "cpu", "--lab", join(DIST, "assets/lab/lab.fml"), "--dataset", "utkface", "--protocol", "all-ages", "--run-dir", dir]
    .concat(["--weighting", s.weighting, "--lambda", s.lambda, "--freeze-mode", s.freeze_mode, "--patience", s.patience, "--lr", s.lr])
    .concat(["--weight-decay", s.weight_decay, "--lr-patience", s.lr_patience, "--batch-size", s.batch_size, "--max-epochs", s.max_epochs])
    .concat(["--seed", s.seed, "--head-hidden", s.head_hidden, "--dropout", s.dropout, "--shared", s.shared.join(",")])
    .map(String);
  execFileSync(BIN, flags, { stdio: "ignore" });
  const result = JSON.parse(readFileSync(join(dir, "result.json"), "utf8"));
  rmSync(dir, { recursive: true, force: true });
  return { epochs: result.epochs, val: result.val.metrics };
}

async function openLab(backend) {
  const session = await launch(site.url, { query: `?backend=${backend}`, webgpu: backend === "webgpu", viewport: { width: 1100, height: 900 } });
  await ready(session.page);
  const t = performance.now();
  await session.page.click("#lab-open");
  await session.page.waitForSelector("body[data-lab-state=idle]", { timeout: 300_000 });
  session.openSeconds = (performance.now() - t) / 1000;
  return session;
}

async function train(page, { epochs, patience, weighting, shot }) {
  await page.selectOption("#lab-set", "utkface-all-ages");
  await page.fill("#lab-epochs", String(epochs));
  await page.fill("#lab-patience", String(patience));
  await page.selectOption("#lab-weighting", weighting);
  const t = performance.now();
  await page.click("#lab-train");
  if (shot) {
    await page.waitForFunction((n) => window.facemtlLab.runs.at(-1).reports.length >= n, shot.after, { timeout: 600_000 });
    await page.locator("#lab").screenshot({ path: join(SHOTS, shot.file) });
  }
  await page.waitForFunction(() => document.body.dataset.labState === "finished", null, { timeout: 3_600_000 });
  const wall = (performance.now() - t) / 1000;
  const run = await page.evaluate(() => window.facemtlLab.runs.at(-1));
  const seconds = run.seconds;
  return {
    weighting,
    epochs: seconds.length,
    faces: 2000,
    epoch_seconds: { mean: seconds.reduce((a, b) => a + b, 0) / seconds.length, max: Math.max(...seconds), first: seconds[0] },
    run_seconds: wall,
    val: run.results.val.metrics,
    native: native(run.request.settings),
  };
}

const out = {
  date: new Date().toISOString(),
  download: {
    lab_file: { raw: statSync(join(DIST, "assets/lab/lab.fml")).size, served: served("assets/lab/lab.fml") },
    lab_js: served("modules/lab.js"),
    lab_worker_js: served("lab-worker.js"),
    // The Lab's worker runs the full module, which a page on the CPU module fetches only then.
    wasm_served: served(readFileSync(join(DIST, "index.html"), "utf8").match(/"\.\/(facemtl-web-[0-9a-f]+_bg\.wasm)"/)[1]),
  },
  backends: {},
};
out.download.lab_total_served = out.download.lab_file.served + out.download.lab_js + out.download.lab_worker_js;

{
  const { page, close, openSeconds } = await openLab("cpu");
  const whole = await train(page, { epochs: 30, patience: 30, weighting: "learned", shot: { after: 8, file: "lab-running.png" } });
  const overlaid = await train(page, { epochs: 30, patience: 5, weighting: "average" });
  await page.locator("#lab").screenshot({ path: join(SHOTS, "lab-overlay.png") });
  out.backends.cpu = { open_seconds: openSeconds, whole_run: whole, demo_run: overlaid };
  await close();
}
{
  const { page, close, openSeconds } = await openLab("webgpu");
  const epochs = Number(process.env.WEBGPU_EPOCHS || 2);
  const run = await train(page, { epochs, patience: 30, weighting: "learned" });
  out.backends.webgpu = { open_seconds: openSeconds, measured: run, run_30_epochs_seconds: 30 * run.epoch_seconds.mean };
  await close();
}
site.server.close();
console.log(JSON.stringify(out, null, 1));
