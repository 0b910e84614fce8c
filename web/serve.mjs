// A static server for the built app (dist/) on 127.0.0.1, compressed as a static host would
// serve it: the brotli file written by precompress.mjs when the browser accepts brotli, else gzip. Usage: node web/serve.mjs [DIR] [PORT] [PREFIX]; prints the address.
// Imported by the browser tests, which also read the log of every request it answered.
import { createServer } from "node:http";
import { access, readFile, stat } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { gzipSync } from "node:zlib";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".css": "text/css",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".jpg": "image/jpeg",
  ".png": "image/png",
};

/// Files that gain nothing from compression.
export const INCOMPRESSIBLE = /\.(jpg|png)$/;

async function exists(file) {
  return access(file).then(() => true, () => false);
}

/// Serve `dir` under `prefix` (e.g. "/some/path/"); resolves to { server, url, log }.
export async function serve(dir, port = 0, prefix = "/") {
  const log = [];
  const gzipped = new Map();
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const entry = { path, bytes: 0 };
    log.push(entry);
    if (!path.startsWith(prefix)) {
      res.writeHead(404).end();
      return;
    }
    let file = normalize(join(dir, path.slice(prefix.length) || "index.html"));
    if (!file.startsWith(normalize(dir))) {
      res.writeHead(403).end();
      return;
    }
    try {
      let info = await stat(file);
      if (info.isDirectory()) {
        file = join(file, "index.html");
        info = await stat(file);
      }
      const headers = {
        "content-type": TYPES[extname(file)] || "application/octet-stream",
        "cache-control": "no-cache",
        "x-decoded-length": info.size,
      };
      const accepts = (req.headers["accept-encoding"] || "").split(",").map((e) => e.trim().split(";")[0]);
      const compressible = !INCOMPRESSIBLE.test(file);
      let body;
      if (compressible && accepts.includes("br") && (await exists(`${file}.br`))) {
        body = await readFile(`${file}.br`);
        headers["content-encoding"] = "br";
      } else if (compressible && accepts.includes("gzip")) {
        if (!gzipped.has(file)) gzipped.set(file, gzipSync(await readFile(file), { level: 9 }));
        body = gzipped.get(file);
        headers["content-encoding"] = "gzip";
      } else {
        body = await readFile(file);
      }
      headers["content-length"] = body.length;
      entry.bytes = body.length;
      entry.encoding = headers["content-encoding"] || "identity";
      res.writeHead(200, headers).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((ok) => server.listen(port, "127.0.0.1", ok));
  return { server, url: `http://127.0.0.1:${server.address().port}${prefix}`, log };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [dir = "dist", port = "8080", prefix = "/"] = process.argv.slice(2);
  const { url } = await serve(dir, Number(port), prefix);
  console.log(`facemtl is served at ${url} (Ctrl+C stops it)`);
}
