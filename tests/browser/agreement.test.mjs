// The comparison of two training runs (agreement.mjs) on measured runs: the page's Lab run and
// the native trainer's through three vector paths agree as float order allows, although their
// epoch counts differ (14 and 15); a run with one setting changed, or with a convergence moved
// further than float order moves one, does not.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { FIRST_EPOCH_GAP, disagreement, replay } from "./agreement.mjs";

const MEASURED = JSON.parse(readFileSync(resolve(import.meta.dirname, "fixtures/lab-losses.json"), "utf8"));
const { tasks, patience, runs } = MEASURED;
const SAME_SETTINGS = ["page", "native-avx512", "native-avx2", "native-sse42"];

test("the page and three native vector paths agree, 14 and 15 epochs alike", () => {
  assert.deepEqual(new Set(SAME_SETTINGS.map((r) => runs[r].length)), new Set([14, 15]), "the measured runs differ in length");
  for (const a of SAME_SETTINGS) {
    for (const b of SAME_SETTINGS) assert.equal(disagreement(runs[a], runs[b], tasks, patience), null, `${a} against ${b}`);
  }
});

test("one setting changed (weight decay doubled) parts the runs from the first epoch", () => {
  const why = disagreement(runs["native-weight-decay-2e-5"], runs["native-avx512"], tasks, patience);
  assert.match(why, /first epoch/);
  const gap = Math.max(...tasks.map((_, t) => Math.abs(runs["native-weight-decay-2e-5"][0][t] / runs["native-avx512"][0][t] - 1)));
  assert.ok(gap > 100 * FIRST_EPOCH_GAP, `a real difference stands far above the bound: ${gap}`);
});

test("a convergence moved by more than float order moves it, or tasks converging in another order, is a disagreement", () => {
  const native = runs["native-avx512"];
  // Age at epoch 9 a clear 10 % better than its best, and so again at 11: it converges at 16.
  const better = (e) => e === 9 || e === 11;
  const moved = native.map((row, e) => row.map((loss, t) => (better(e) && tasks[t] === "age" ? 0.9 ** (e - 8) * loss : loss)));
  const longer = [...moved, ...Array.from({ length: 3 }, () => moved.at(-1))];
  assert.match(disagreement(native, longer, tasks, patience), /age converged at epoch 13 against 16/);
  // Gender improving once more before it converged: it converges after race.
  const reordered = native.map((row, e) => row.map((loss, t) => (e === 7 && tasks[t] === "gender" ? 0.5 * loss : loss)));
  assert.match(disagreement(native, reordered, tasks, patience), /another order/);
});

test("the replay of Early Freeze converges where the runs' own events say", () => {
  const page = replay(runs.page, patience).tasks;
  assert.deepEqual(page.map((t) => [t.converged, t.bestEpoch]), [[8, 3], [14, 9], [8, 3]]);
  const native = replay(runs["native-avx512"], patience).tasks;
  assert.deepEqual(native.map((t) => [t.converged, t.bestEpoch]), [[8, 3], [13, 8], [8, 3]]);
});
