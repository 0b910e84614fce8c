// Times the browser's packed kernels under Node's V8 (the engine of Chromium): a JSON line per
// network with the milliseconds per image of each layer kind. Built by bench/wasm-layers.sh.
import { readFileSync } from "node:fs";

const wasm = readFileSync(process.argv[2]);
const { instance } = await WebAssembly.instantiate(wasm, { env: { now: () => performance.now() } });
const { run, time } = instance.exports;
for (const [network, name] of [[0, "faceres"], [1, "blazeface"], [2, "faceres, int8 1x1 layers summed in integers"]]) {
  run(network, 2); // warm-up: V8 compiles the hot loops
  const checksum = run(network, 10);
  const [stem, depthwise, pointwise, shortcut] = [0, 1, 2, 3].map((k) => Math.round(time(k) * 100) / 100);
  const total = Math.round((stem + depthwise + pointwise + shortcut) * 100) / 100;
  console.log(JSON.stringify({ network, name, ms_per_image: { stem, depthwise, pointwise, shortcut, total }, checksum }));
}
