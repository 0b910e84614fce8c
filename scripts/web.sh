# Sourced after env.sh: the browser app's tools and build.
#   web_tools   install trunk 0.21.14 and wasm-bindgen-cli 0.2.130 into $FACEMTL_CACHE/tools
#   web_build   gather the assets (weights, model, report, samples, the Lab's data built by
#               `facemtl lab build` from $FACEMTL_DATA), `trunk build` the full module into
#               dist/, add the CPU module beside it, and finish it (web/postbuild.mjs: the
#               loader that picks a module, asset manifest, CSP, brotli)
export PATH="$FACEMTL_CACHE/tools/bin:$PATH"

web_tools() {
  local root="$FACEMTL_CACHE/tools" target="$FACEMTL_CACHE/target-tools"
  if ! command -v trunk >/dev/null 2>&1; then
    echo "installing trunk 0.21.14 (once, about 15 minutes)" >&2
    CARGO_TARGET_DIR="$target" cargo install --locked --quiet trunk@0.21.14 --root "$root"
  fi
  if ! wasm-bindgen --version 2>/dev/null | grep -q 0.2.130; then
    echo "installing wasm-bindgen-cli 0.2.130 (once, about 10 minutes)" >&2
    # Its lock file pins webpki-roots 1.0.11, which the registry no longer has: build it
    # from its crate with 1.0.10 instead.
    local src="$FACEMTL_CACHE/tools/src"
    rm -rf "$src" && mkdir -p "$src"
    (cd "$src" && cargo new --quiet --lib fetch && cd fetch &&
      cargo add --quiet wasm-bindgen-cli@=0.2.130 && cargo fetch --quiet)
    tar xzf "$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/wasm-bindgen-cli-0.2.130.crate | head -1)" -C "$src"
    (cd "$src/wasm-bindgen-cli-0.2.130" && cargo update --quiet -p webpki-roots --precise 1.0.10 &&
      CARGO_TARGET_DIR="$target" cargo install --locked --quiet --path . --root "$root")
  fi
}

web_build() {
  local assets=web/www/assets
  rm -rf "$assets" && mkdir -p "$assets/weights" "$assets/samples"
  # The backbone's weights at the precision the shipped model was exported for and measured
  # with (its header's `backbone_weights`: int8, a third of the download).
  local precision
  precision=$(node -e '
    const b = require("fs").readFileSync(process.argv[1]);
    const header = JSON.parse(b.subarray(12, 12 + b.readUInt32LE(8)));
    process.stdout.write(header.backbone_weights === "int8" ? "-int8" : "");' models/utkface-celeba-faceres.fmtl)
  cp "$FACEMTL_CACHE/weights/blazeface.fmh" "$assets/weights/"
  cp "$FACEMTL_CACHE/weights/faceres$precision.fmh" "$assets/weights/faceres.fmh"
  cp models/utkface-celeba-faceres.fmtl models/utkface-celeba-faceres.report.json "$assets/"
  cp "$FACEMTL_CACHE"/npm/@vladmandic/face-api/package/demo/sample[1-6].jpg "$assets/samples/"
  # The Lab's features come from the feature cache (extracted once, a few minutes on a CPU).
  "$FACEMTL_BIN" --backend cpu lab build --out "$FACEMTL_CACHE/lab/lab.fml"
  mkdir -p "$assets/lab" && cp "$FACEMTL_CACHE/lab/lab.fml" "$assets/lab/"
  CARGO_TARGET_DIR="$FACEMTL_CACHE/target-wasm" trunk build --release
  # The CPU module (no wgpu, no Lab), for browsers without a WebGPU adapter, with its own
  # profile (Cargo.toml's `web-cpu`).
  CARGO_TARGET_DIR="$FACEMTL_CACHE/target-wasm" cargo build --quiet -p facemtl-web \
    --target wasm32-unknown-unknown --profile web-cpu --no-default-features
  wasm-bindgen --target web --no-typescript --out-dir dist --out-name facemtl-web-cpu \
    "$FACEMTL_CACHE/target-wasm/wasm32-unknown-unknown/web-cpu/facemtl_web.wasm"
  node web/postbuild.mjs dist
}
