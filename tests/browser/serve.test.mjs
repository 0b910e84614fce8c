// The static server against hostile and careless requests: malformed URLs, paths that climb
// out of the served folder (encoded, through a sibling folder or a symlink), other methods,
// and a file changed while the server runs. Raw sockets, so that nothing normalises the
// request on its way.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { Agent, get as httpGet } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gunzipSync } from "node:zlib";
import { serve } from "../../web/serve.mjs";

const SERVE = resolve(import.meta.dirname, "../../web/serve.mjs");

let scratch, site, port;
before(async () => {
  scratch = mkdtempSync(join(tmpdir(), "facemtl-serve-"));
  const dist = join(scratch, "dist");
  mkdirSync(dist);
  writeFileSync(join(dist, "index.html"), "<!doctype html><script type=module>window.ok = 1</script>");
  writeFileSync(join(dist, "app.js"), "console.log('v1')");
  // A sibling folder whose name starts like the served one, and a symlink leading outside.
  mkdirSync(join(scratch, "dist2"));
  writeFileSync(join(scratch, "dist2/secret.txt"), "secret");
  mkdirSync(join(scratch, "outside"));
  writeFileSync(join(scratch, "outside/secret.txt"), "secret");
  symlinkSync(join(scratch, "outside"), join(dist, "link"));
  site = await serve(dist, 0, "/");
  port = site.server.address().port;
});
after(() => {
  site?.server.close();
  rmSync(scratch, { recursive: true, force: true });
});

/// Send one raw request; resolves to { status, headers, body }.
function raw(requestLine, headers = {}) {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const chunks = [];
    socket.on("data", (c) => chunks.push(c));
    socket.on("error", reject);
    socket.setTimeout(5000, () => socket.destroy(new Error(`no answer to ${requestLine}`)));
    socket.on("end", () => {
      const text = Buffer.concat(chunks);
      const split = text.indexOf("\r\n\r\n");
      const head = text.subarray(0, split).toString().split("\r\n");
      const parsed = Object.fromEntries(head.slice(1).map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
      resolve({ status: Number(head[0].split(" ")[1]), headers: parsed, body: text.subarray(split + 4) });
    });
    const lines = [requestLine, "host: 127.0.0.1", "connection: close", ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    socket.write(`${lines.join("\r\n")}\r\n\r\n`);
  });
}

test("malformed URLs get 400 and the server keeps serving", async () => {
  for (const target of ["/%", "/%zz", "/%E0%A4%A", "//", "http://[", "/a%00b"]) {
    const response = await raw(`GET ${target} HTTP/1.1`);
    assert.equal(response.status, 400, target);
  }
  assert.equal((await raw("GET / HTTP/1.1")).status, 200);
});

test("paths outside the served folder are not served, however they are spelled", async () => {
  for (const target of ["/..%2fdist2%2fsecret.txt", "/../dist2/secret.txt", "/%2e%2e/dist2/secret.txt", "/link/secret.txt", "/..%2foutside%2fsecret.txt"]) {
    const response = await raw(`GET ${target} HTTP/1.1`);
    assert.notEqual(response.status, 200, target);
    assert.ok(!response.body.toString().includes("secret"), target);
  }
});

test("only GET and HEAD are answered", async () => {
  for (const method of ["POST", "DELETE", "TRACE", "OPTIONS", "PUT"]) {
    const response = await raw(`${method} /index.html HTTP/1.1`);
    assert.equal(response.status, 405, method);
    assert.equal(response.headers.allow, "GET, HEAD");
  }
  const head = await raw("HEAD /app.js HTTP/1.1");
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
});

test("every answer says nosniff and Vary, and the page gets a strict CSP allowing its own inline script", async () => {
  const page = await raw("GET / HTTP/1.1");
  const csp = page.headers["content-security-policy"];
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self' 'wasm-unsafe-eval' 'sha256-[A-Za-z0-9+/=]+'/);
  assert.doesNotMatch(csp, /'unsafe-inline'|'unsafe-eval'/);
  for (const response of [page, await raw("GET /app.js HTTP/1.1"), await raw("GET /missing HTTP/1.1")]) {
    assert.equal(response.headers["x-content-type-options"], "nosniff");
    assert.equal(response.headers.vary, "Accept-Encoding");
    assert.ok(response.headers["content-security-policy"]);
  }
});

test("a file changed while the server runs is served as it is now, compressed or not", async () => {
  const get = async () => gunzipSync((await raw("GET /app.js HTTP/1.1", { "accept-encoding": "gzip" })).body).toString();
  assert.equal(await get(), "console.log('v1')");
  const path = join(scratch, "dist/app.js");
  writeFileSync(path, "console.log('version 2')");
  const later = new Date(Date.now() + 5000);
  utimesSync(path, later, later);
  assert.equal(await get(), "console.log('version 2')");
  // A brotli file older than its source is stale and not sent.
  writeFileSync(`${path}.br`, "stale");
  const past = new Date(Date.now() - 60_000);
  utimesSync(`${path}.br`, past, past);
  const response = await raw("GET /app.js HTTP/1.1", { "accept-encoding": "br, gzip" });
  assert.equal(response.headers["content-encoding"], "gzip");
});

test("concurrent first requests for a file share one compression", async () => {
  // A few megabytes that compress (as the 20 MB wasm does), asked for 40 times at once.
  const text = Array.from({ length: 200_000 }, (_, i) => `line ${i} of the big file ${i % 97}`).join("\n");
  writeFileSync(join(scratch, "dist/big.js"), text);
  const before = site.stats.compressions;
  const bodies = await Promise.all(Array.from({ length: 40 }, () => raw("GET /big.js HTTP/1.1", { "accept-encoding": "gzip" })));
  assert.equal(site.stats.compressions - before, 1, "one compression for 40 requests");
  for (const response of bodies) assert.equal(gunzipSync(response.body).toString(), text);
});

/// The resident memory of process `pid`, in MB.
const residentMb = (pid) => Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]) / 1024;

/// `count` GETs of `path` on `url`'s server, `parallel` at a time over kept-alive connections.
async function flood(url, path, count, parallel) {
  const agent = new Agent({ keepAlive: true, maxSockets: parallel });
  let sent = 0;
  const one = () =>
    new Promise((done, fail) => httpGet(new URL(path, url), { agent }, (res) => res.resume().on("end", done)).on("error", fail));
  const worker = async () => {
    while (sent < count) {
      sent += 1;
      await one();
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  agent.destroy();
}

test("a flood of requests with long paths leaves the server's memory where it was", async (t) => {
  // The server as a visitor runs it, in its own process, whose memory is measured alone.
  const server = spawn(process.execPath, [SERVE, join(scratch, "dist"), "0", "/"], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const url = await new Promise((found) => server.stdout.on("data", (d) => /(http:\S+)/.test(d) && found(d.toString().match(/(http:\S+)/)[1])));
    const path = `/${"x".repeat(14_000)}`;
    // Warmed up first: the server's own allocations settle in the first requests.
    await flood(url, path, 2_000, 20);
    const start = residentMb(server.pid);
    const after = [];
    for (let round = 0; round < 2; round++) {
      await flood(url, path, 20_000, 20);
      after.push(residentMb(server.pid));
    }
    t.diagnostic(`server resident memory: ${start.toFixed(0)} MB warmed up, ${after.map((m) => m.toFixed(0)).join(" MB, ")} MB after each flood of 20,000 requests with a 14 KB path`);
    // Each flood carries 280 MB of paths: a server that kept them would grow by that much.
    for (const mb of after) assert.ok(mb - start < 40, `grew from ${start.toFixed(0)} to ${mb.toFixed(0)} MB`);
  } finally {
    server.kill();
  }
});
