// After trunk has built the app into DIR (default dist) and web_build has put the CPU module
// beside it:
// - drops the symbol names from both modules (see `dropNames`);
// - writes the loader that picks a module into index.html (see `writeLoader`);
// - writes assets/manifest.json with the sha256 of every asset, which the page uses to key its
//   Cache API store (a redeploy that changes a file changes its key, so no visitor keeps an old
//   model beside new code) and to check what it downloaded;
// - puts the Content-Security-Policy into index.html as a <meta> for hosts that send no header;
// - writes FILE.br beside every compressible file (brotli at its highest quality, as static
//   hosts precompress), which serve.mjs sends to browsers that accept it.
// Usage: node web/postbuild.mjs [DIR]
import { createHash } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { brotliCompressSync, constants } from "node:zlib";
import { INCOMPRESSIBLE, contentSecurityPolicy } from "./serve.mjs";

async function files(dir) {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(entries.map((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)])));
  return nested.flat();
}

/// `DIR/assets/manifest.json`: { "path below assets/": "sha256 hex" } for every asset.
export async function writeManifest(dir) {
  const assets = join(dir, "assets");
  const manifest = {};
  for (const file of (await files(assets)).sort()) {
    const name = relative(assets, file);
    if (name === "manifest.json" || name.endsWith(".br")) continue;
    manifest[name] = createHash("sha256").update(await readFile(file)).digest("hex");
  }
  await writeFile(join(assets, "manifest.json"), JSON.stringify(manifest, null, 1));
  return manifest;
}

/// The byte length written as an unsigned LEB128 at `at` in `bytes`, and where it ends.
function leb(bytes, at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const byte = bytes[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(byte & 0x80)) return [value, at];
  }
}

/// The sections of a wasm module: `{ id, name (custom sections'), start, end }`.
export function wasmSections(bytes) {
  const sections = [];
  for (let at = 8; at < bytes.length; ) {
    const [length, body] = leb(bytes, at + 1);
    const [nameLength, name] = bytes[at] === 0 ? leb(bytes, body) : [0, body];
    const section = { id: bytes[at], start: at, end: body + length };
    if (section.id === 0) section.name = bytes.subarray(name, name + nameLength).toString();
    sections.push(section);
    at = section.end;
  }
  return sections;
}

/// The wasm without its `name` custom section (the symbol names, 7 MB). The `web` profile does
/// not strip: wasm-ld's strip would also drop the `target_features` section, which says the
/// module uses SIMD and which wasm-bindgen reads. Runs before the loader takes the files' hashes.
async function dropNames(dir) {
  for (const file of (await readdir(dir)).filter((f) => f.endsWith("_bg.wasm"))) {
    const path = join(dir, file);
    const bytes = await readFile(path);
    const kept = wasmSections(bytes).filter((s) => s.name !== "name");
    await writeFile(path, Buffer.concat([bytes.subarray(0, 8), ...kept.map((s) => bytes.subarray(s.start, s.end))]));
  }
}

/// The CPU module, as web_build names it beside trunk's full one.
const CPU_MODULE = { js: "./facemtl-web-cpu.js", wasm: "./facemtl-web-cpu_bg.wasm" };

const sri = (bytes) => `sha384-${createHash("sha384").update(bytes).digest("base64")}`;

/// Replaces trunk's placeholder (Trunk.toml's `pattern_script`) with the loader: the full
/// module where the browser offers a WebGPU adapter (or the URL asks `?backend=webgpu`), else
/// the CPU one, each file checked against its hash (an import map for the JS, the request's
/// integrity for the wasm). It exposes both as `wasmModules` (the Lab's worker runs the full
/// one) and the chosen bindings as `wasmBindings`, then fires trunk's event.
export async function writeLoader(dir) {
  const path = join(dir, "index.html");
  const html = await readFile(path, "utf8");
  const placeholder = html.match(/<!-- facemtl full module: (\S+) (\S+) -->/);
  if (!placeholder) throw new Error(`${path}: no module placeholder (Trunk.toml's pattern_script)`);
  const modules = { full: { js: placeholder[1], wasm: placeholder[2] }, cpu: CPU_MODULE };
  const integrity = {};
  for (const module of Object.values(modules)) {
    integrity[module.js] = sri(await readFile(join(dir, module.js)));
    module.integrity = sri(await readFile(join(dir, module.wasm)));
  }
  const loader = `<script type="importmap">${JSON.stringify({ integrity })}</script>
<script type="module">
const modules = ${JSON.stringify(modules)};
const asked = new URLSearchParams(location.search).get("backend");
const gpu = asked === "webgpu" || (asked !== "cpu" && !!(await navigator.gpu?.requestAdapter().catch(() => null)));
const chosen = modules[gpu ? "full" : "cpu"];
const bindings = await import(chosen.js);
await bindings.default({ module_or_path: new Request(chosen.wasm, { integrity: chosen.integrity }) });
window.wasmModules = modules;
window.wasmBindings = bindings;
dispatchEvent(new CustomEvent("TrunkApplicationStarted"));
</script>`;
  await writeFile(path, html.replace(placeholder[0], loader));
}

async function addPolicy(dir) {
  const path = join(dir, "index.html");
  const html = (await readFile(path, "utf8")).replace(/<meta http-equiv="Content-Security-Policy"[^>]*>\s*/i, "");
  const meta = `<meta http-equiv="Content-Security-Policy" content="${contentSecurityPolicy(html, { meta: true })}" />`;
  await writeFile(path, html.replace(/<head>/i, `<head>\n    ${meta}`));
}

/// FILE.br beside every compressible file under `dir` (brotli at its highest quality).
export async function precompress(dir) {
  for (const file of await files(dir)) {
    if (INCOMPRESSIBLE.test(file) || file.endsWith(".br")) continue;
    const body = await readFile(file);
    const br = brotliCompressSync(body, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
        [constants.BROTLI_PARAM_LGWIN]: constants.BROTLI_MAX_WINDOW_BITS,
        [constants.BROTLI_PARAM_SIZE_HINT]: body.length,
      },
    });
    await writeFile(`${file}.br`, br);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = process.argv[2] || "dist";
  await dropNames(dir);
  await writeLoader(dir);
  await writeManifest(dir);
  await addPolicy(dir);
  await precompress(dir);
}
