// Headless Chromium for the browser tests and benchmarks: Debian's chromium driven by
// playwright-core, each page in a fresh profile. Every test and benchmark opens it here.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const FLAGS = ["--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

// A fresh browser with one page: `options.webgpu` turns WebGPU on, `options.args` adds flags,
// `options.viewport` (with `scale`, `mobile`) sizes the page. With a `url` (and
// `options.query`), the page opens it after `options.route` has set up its routes, and the
// page must run under the served Content-Security-Policy (never bypassed): a violation is
// reported on the console and counts as an error. Without one, the caller navigates (to time
// the load itself, or to open a page that is not the app's).
export async function launch(url, options = {}) {
  const args = [...FLAGS, ...(options.webgpu ? ["--enable-unsafe-webgpu"] : []), ...(options.args || [])];
  const dir = mkdtempSync(join(tmpdir(), "facemtl-chromium-"));
  const device = options.viewport ? { viewport: options.viewport, deviceScaleFactor: options.scale || 1, isMobile: !!options.mobile, hasTouch: !!options.mobile } : {};
  const context = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args, ...device });
  const page = context.pages()[0] || (await context.newPage());
  const requests = [];
  // The context's requests: the page's and its workers'.
  context.on("request", (r) => requests.push({ url: r.url(), method: r.method() }));
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => /Content.Security.Policy/i.test(m.text()) && errors.push(m.text()));
  const close = async () => {
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  };
  if (url) {
    if (options.route) await options.route(page);
    const response = await page.goto(url + (options.query || ""));
    assert.match(response.headers()["content-security-policy"], /default-src 'none'/);
  }
  return { page, requests, errors, close };
}

export async function ready(page, timeout = 120_000) {
  await page.waitForSelector("body[data-ready=true]", { timeout });
}
