// The figures of docs/teaching.md: native runs on the Lab's file with the Lab's starting
// settings, three seeds each: the loss weightings, Early Freeze against early stopping, and
// every single-task network against the multi-task one. What a class sees in the Lab, measured
// with the same code. Usage (after scripts/web.sh's web_build):
//   FACEMTL_BIN=... node bench/lab-runs.mjs dist/assets/lab/lab.fml > bench/lab-runs.json
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [labFile] = process.argv.slice(2);
const BIN = process.env.FACEMTL_BIN;
if (!labFile || !BIN) throw new Error("usage: FACEMTL_BIN=... node bench/lab-runs.mjs LAB_FILE");
// The Lab's starting settings (facemtl::lab::demo_settings).
const DEMO = ["--lr", "3e-4", "--patience", "5", "--max-epochs", "30"];
const SEEDS = [1, 2, 3];
const SETS = {
  utkface: { flags: ["--dataset", "utkface", "--protocol", "all-ages"], tasks: ["gender", "age", "race"] },
  celeba: { flags: ["--dataset", "celeba"], tasks: ["gender", "young"] },
};

function run(set, extra, seed) {
  const dir = mkdtempSync(join(tmpdir(), "facemtl-lab-run-"));
  try {
    const flags = ["train", "--backend", "cpu", "--lab", labFile, ...SETS[set].flags, ...DEMO, "--seed", String(seed), "--run-dir", dir, ...extra];
    execFileSync(BIN, flags, { stdio: "ignore" });
    const result = JSON.parse(readFileSync(join(dir, "result.json"), "utf8"));
    const rows = readFileSync(join(dir, "metrics.csv"), "utf8").trim().split("\n").slice(1).map((l) => l.split(","));
    const tasks = [...new Set(rows.map((r) => r[1]))];
    const lastEpoch = Math.max(...rows.map((r) => Number(r[0])));
    return {
      epochs: result.epochs,
      val: result.val.metrics,
      test: result.test.metrics,
      converged: Object.fromEntries(rows.filter((r) => r[7] === "converged").map((r) => [r[1], Number(r[0])])),
      // Each task's loss weight at the first and the last epoch.
      weights: Object.fromEntries(tasks.map((t) => [t, [0, lastEpoch].map((e) => Number(rows.find((r) => r[1] === t && Number(r[0]) === e)[5]))])),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const configurations = (set) => [
  { name: "learned", flags: [] },
  { name: "average", flags: ["--weighting", "average"] },
  { name: "uncertainty", flags: ["--weighting", "uncertainty"] },
  { name: "dwa", flags: ["--weighting", "dwa"] },
  { name: "learned, early stopping", flags: ["--freeze-mode", "early-stop"] },
  ...SETS[set].tasks.map((t) => ({ name: `single-task ${t}`, flags: ["--only", t] })),
];

const out = { lab: labFile, settings: DEMO.join(" "), seeds: SEEDS, sets: {} };
for (const set of Object.keys(SETS)) {
  out.sets[set] = configurations(set).map((c) => ({ ...c, runs: SEEDS.map((seed) => run(set, c.flags, seed)) }));
}
console.log(JSON.stringify(out, null, 1));
