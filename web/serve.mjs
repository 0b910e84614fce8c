// A static server for the built app (dist/) on 127.0.0.1, compressed as a static host would
// serve it: the brotli file written by postbuild.mjs when the browser accepts brotli, else gzip.
// Usage: node web/serve.mjs [DIR] [PORT] [PREFIX]; prints the address.
// Imported by the browser tests and benchmarks, which may ask for a log of the requests it
// answered (never kept otherwise: a server that remembered every path would grow with each).
//
// It is written for hostile requests: only GET and HEAD, a malformed URL is a 400 (never a
// crash), a path is served only when its real path (symlinks resolved) lies inside DIR, and
// every answer carries nosniff, Vary and a strict Content-Security-Policy.
import { createServer } from "node:http";
import { createHash } from "node:crypto";
import { readFile, realpath, stat } from "node:fs/promises";
import { extname, isAbsolute, join, relative } from "node:path";
import { promisify } from "node:util";
import { gzip } from "node:zlib";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".css": "text/css",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".jpg": "image/jpeg",
  ".png": "image/png",
  ".md": "text/markdown; charset=utf-8",
};

/// Files that gain nothing from compression.
export const INCOMPRESSIBLE = /\.(jpg|png)$/;

/// The page's Content-Security-Policy: its own files only, WebAssembly compiled from them, and
/// the inline scripts of `html` (trunk's loader) allowed by their hashes, not wholesale.
/// `meta` leaves out what a <meta> element cannot carry.
export function contentSecurityPolicy(html, { meta = false } = {}) {
  const inline = [...html.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/gi)].map((m) => m[1]).filter((s) => s.trim());
  const hashes = inline.map((s) => `'sha256-${createHash("sha256").update(s).digest("base64")}'`);
  return [
    "default-src 'none'",
    ["script-src 'self' 'wasm-unsafe-eval'", ...hashes].join(" "),
    "style-src 'self'",
    "img-src 'self' blob: data:",
    "media-src 'self' blob: mediastream:",
    "connect-src 'self'",
    "worker-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "object-src 'none'",
    ...(meta ? [] : ["frame-ancestors 'none'"]),
  ].join("; ");
}

const SECURITY_HEADERS = {
  "content-security-policy": contentSecurityPolicy(""),
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "permissions-policy": "camera=(self), microphone=(), geolocation=()",
  vary: "Accept-Encoding",
};

/// The request's path below `prefix`, decoded, or null when the request target is not a
/// well-formed origin-form URL.
function requestPath(target) {
  if (typeof target !== "string" || !target.startsWith("/") || target.startsWith("//")) return null;
  try {
    const path = decodeURIComponent(new URL(target, "http://localhost").pathname);
    return path.includes("\0") ? null : path;
  } catch {
    return null;
  }
}

/// `file`'s real path when it lies inside `root` (a real path), else null.
async function contained(root, file) {
  const real = await realpath(file).catch(() => null);
  if (real === null) return null;
  const inside = relative(root, real);
  return inside === "" || (!inside.startsWith("..") && !isAbsolute(inside)) ? real : null;
}

const gzipAsync = promisify(gzip);

/// Serve `dir` under `prefix` (e.g. "/some/path/"); resolves to { server, url, log, stats }.
/// With `{ log: true }`, `log` lists every request answered (its path, bytes and encoding);
/// `stats.compressions` counts the files gzipped on the fly.
export async function serve(dir, port = 0, prefix = "/", options = {}) {
  const root = await realpath(dir);
  const log = [];
  const stats = { compressions: 0 };
  // Compressed bodies by file, kept while the file's size and modification time hold; one
  // compression in flight per file, which every request that wants it awaits.
  const gzipped = new Map();
  async function gzipOf(file, info) {
    const version = `${info.size}:${info.mtimeMs}`;
    if (gzipped.get(file)?.version !== version) {
      stats.compressions += 1;
      const body = readFile(file).then((bytes) => gzipAsync(bytes, { level: 9 }));
      gzipped.set(file, { version, body });
      // A failed compression is not kept: the next request tries again.
      body.catch(() => gzipped.get(file)?.body === body && gzipped.delete(file));
    }
    return gzipped.get(file).body;
  }
  const answer = (res, status, headers = {}) => res.writeHead(status, { ...SECURITY_HEADERS, ...headers }).end();

  async function respond(req, res) {
    const entry = { path: req.url, bytes: 0 };
    if (options.log) log.push(entry);
    if (req.method !== "GET" && req.method !== "HEAD") return answer(res, 405, { allow: "GET, HEAD" });
    const path = requestPath(req.url);
    if (path === null) return answer(res, 400);
    entry.path = path;
    if (!path.startsWith(prefix)) return answer(res, 404);
    let file = await contained(root, join(root, path.slice(prefix.length)));
    if (file && (await stat(file)).isDirectory()) file = await contained(root, join(file, "index.html"));
    if (!file) return answer(res, 404);
    const info = await stat(file);
    if (!info.isFile()) return answer(res, 404);
    const headers = {
      ...SECURITY_HEADERS,
      // A page's policy allows its own inline scripts, which change with each build.
      "content-security-policy": contentSecurityPolicy(extname(file) === ".html" ? await readFile(file, "utf8") : ""),
      "content-type": TYPES[extname(file)] || "application/octet-stream",
      "cache-control": "no-cache",
      "x-decoded-length": info.size,
    };
    const accepts = (req.headers["accept-encoding"] || "").split(",").map((e) => e.trim().split(";")[0]);
    const compressible = !INCOMPRESSIBLE.test(file);
    const brotli = compressible && accepts.includes("br") ? await stat(`${file}.br`).catch(() => null) : null;
    let body;
    if (brotli && brotli.mtimeMs >= info.mtimeMs) {
      body = await readFile(`${file}.br`);
      headers["content-encoding"] = "br";
    } else if (compressible && accepts.includes("gzip")) {
      body = await gzipOf(file, info);
      headers["content-encoding"] = "gzip";
    } else {
      body = await readFile(file);
    }
    headers["content-length"] = body.length;
    entry.bytes = req.method === "HEAD" ? 0 : body.length;
    entry.encoding = headers["content-encoding"] || "identity";
    res.writeHead(200, headers).end(req.method === "HEAD" ? undefined : body);
  }

  const server = createServer((req, res) => {
    respond(req, res).catch(() => {
      if (!res.headersSent) answer(res, 404);
      else res.destroy();
    });
  });
  // A request line node cannot parse is answered, not left hanging.
  server.on("clientError", (_, socket) => socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n"));
  await new Promise((ok) => server.listen(port, "127.0.0.1", ok));
  return { server, url: `http://127.0.0.1:${server.address().port}${prefix}`, log, stats };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [dir = "dist", port = "8080", prefix = "/"] = process.argv.slice(2);
  const { url } = await serve(dir, Number(port), prefix);
  console.log(`facemtl is served at ${url} (Ctrl+C stops it)`);
}
