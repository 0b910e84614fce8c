#!/usr/bin/env bash
# Runs every test: builds (cached), fetches and converts the pretrained weights (cached),
# checks formatting and lints (clippy, warnings are errors), then the workspace's tests on the
# real data sets in $FACEMTL_DATA.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prepare.sh
cargo fmt --check
cargo clippy --release --all-targets --quiet -- -D warnings
cargo test --release
# The browser app: two wasm modules (the full one for WebGPU and the Lab, the CPU one), then
# real-browser tests in headless Chromium against them, compared with the native `predict`.
source scripts/web.sh
web_tools
web_build
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2
fi
# The Lab's run is compared with the native trainer on this CPU's vector path and on another
# one, under qemu's user-mode emulator: SSE4.2 alone where the CPU has AVX2 or more (about 9
# minutes on an AMD EPYC, 12 on an Intel Xeon), AVX2 elsewhere. Emulating AVX2's fused
# multiply-add instead costs 3 minutes on the EPYC but 75 on the Xeon, past CI's limit.
# docs/lab-agreement.md says why.
if ! command -v qemu-x86_64 >/dev/null 2>&1; then
  echo "installing Debian's qemu-user for the comparison on another vector path" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user) >&2
fi
if grep -qw avx2 /proc/cpuinfo; then other="qemu-x86_64 -cpu Nehalem"; else other="qemu-x86_64 -cpu Haswell-v4"; fi
(cd tests/browser && npm ci --no-audit --no-fund --silent &&
  FACEMTL_BIN="$FACEMTL_BIN" FACEMTL_NATIVE_OTHER_PATH="$other" npm test)
