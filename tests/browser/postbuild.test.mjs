// web/postbuild.mjs's loader on a made-up build: it names both modules with their hashes, and a
// build without trunk's placeholder (Trunk.toml's `pattern_script`) is an error, not a page
// that loads nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeLoader } from "../../web/postbuild.mjs";

const sri = (text) => `sha384-${createHash("sha384").update(text).digest("base64")}`;

function build(head) {
  const dir = mkdtempSync(join(tmpdir(), "facemtl-postbuild-"));
  writeFileSync(join(dir, "index.html"), `<!doctype html><head>${head}</head>`);
  for (const [file, text] of Object.entries({
    "facemtl-web-abc.js": "full glue",
    "facemtl-web-abc_bg.wasm": "full wasm",
    "facemtl-web-cpu.js": "cpu glue",
    "facemtl-web-cpu_bg.wasm": "cpu wasm",
  })) {
    writeFileSync(join(dir, file), text);
  }
  return dir;
}

test("the loader names both modules, each file with its hash", async () => {
  const dir = build("<!-- facemtl full module: ./facemtl-web-abc.js ./facemtl-web-abc_bg.wasm -->");
  try {
    await writeLoader(dir);
    const html = readFileSync(join(dir, "index.html"), "utf8");
    assert.doesNotMatch(html, /facemtl full module/);
    for (const text of ["full glue", "full wasm", "cpu glue", "cpu wasm"]) assert.ok(html.includes(sri(text)), text);
    assert.match(html, /<script type="importmap">/);
    assert.match(html, /navigator\.gpu\?\.requestAdapter\(\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a build without trunk's placeholder is refused", async () => {
  const dir = build("");
  try {
    await assert.rejects(writeLoader(dir), /no module placeholder/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
