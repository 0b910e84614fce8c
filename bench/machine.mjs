// The machine a benchmark ran on, recorded beside its figures: runs from different machines are
// never compared (BENCHMARKS.md keeps them apart).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus } from "node:os";

// The vector extensions that decide how fast WebAssembly SIMD and native code run.
const VECTOR = ["avx512f", "avx512vnni", "avx2", "fma", "avx", "sse4_2"];

export function machine() {
  const info = (() => {
    try {
      return readFileSync("/proc/cpuinfo", "utf8");
    } catch {
      return "";
    }
  })();
  const flags = new Set((info.match(/^flags\s*:(.*)$/m)?.[1] ?? "").trim().split(/\s+/));
  const chromium = (() => {
    try {
      return execFileSync(process.env.CHROMIUM || "/usr/bin/chromium", ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    } catch {
      return "unknown";
    }
  })();
  return { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, vector: VECTOR.filter((f) => flags.has(f)), chromium };
}
