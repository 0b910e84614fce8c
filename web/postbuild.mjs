// After trunk has built the app into DIR (default dist): writes assets/manifest.json with the
// sha256 of every asset, which the page uses to key its Cache API store (a redeploy that
// changes a file changes its key, so no visitor keeps an old model beside new code) and to
// check what it downloaded; puts the Content-Security-Policy into index.html as a <meta> for
// hosts that send no header; then writes FILE.br beside every compressible file (brotli at its
// highest quality, as static hosts precompress), which serve.mjs sends to browsers that accept
// it. First it drops the symbol names from the wasm (see `dropNames`). Usage: node
// web/postbuild.mjs [DIR]
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
/// module uses SIMD and which wasm-bindgen reads. Trunk's integrity hash of the file in
/// index.html is updated to match.
async function dropNames(dir) {
  const indexPath = join(dir, "index.html");
  let html = await readFile(indexPath, "utf8");
  for (const file of (await readdir(dir)).filter((f) => f.endsWith("_bg.wasm"))) {
    const path = join(dir, file);
    const bytes = await readFile(path);
    const kept = wasmSections(bytes).filter((s) => s.name !== "name");
    const stripped = Buffer.concat([bytes.subarray(0, 8), ...kept.map((s) => bytes.subarray(s.start, s.end))]);
    const sri = (b) => `sha384-${createHash("sha384").update(b).digest("base64")}`;
    html = html.replaceAll(sri(bytes), sri(stripped));
    await writeFile(path, stripped);
  }
  await writeFile(indexPath, html);
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
  await writeManifest(dir);
  await addPolicy(dir);
  await precompress(dir);
}
