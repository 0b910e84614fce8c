// Writes FILE.br beside every compressible file of the built app (brotli at its highest
// quality, once per build, as static hosts precompress): serve.mjs sends it to browsers that
// accept brotli. Usage: node web/precompress.mjs [DIR]
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { brotliCompressSync, constants } from "node:zlib";
import { INCOMPRESSIBLE } from "./serve.mjs";

async function files(dir) {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)])),
  );
  return nested.flat();
}

const dir = process.argv[2] || "dist";
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
