// Headless Chromium for the browser tests and benchmarks: Debian's chromium driven by
// playwright-core, each page in a fresh profile.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const FLAGS = ["--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

// The page runs under the served Content-Security-Policy (never bypassed): a violation is
// reported on the console and counts as an error.
export async function launch(url, options = {}) {
  const args = [...FLAGS, ...(options.webgpu ? ["--enable-unsafe-webgpu"] : []), ...(options.args || [])];
  const dir = join(tmpdir(), `facemtl-chromium-${process.pid}-${Date.now()}`);
  const device = options.viewport ? { viewport: options.viewport, deviceScaleFactor: options.scale || 1, isMobile: !!options.mobile, hasTouch: !!options.mobile } : {};
  const context = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args, ...device });
  const page = context.pages()[0] || (await context.newPage());
  const requests = [];
  // The context's requests: the page's and its workers'.
  context.on("request", (r) => requests.push({ url: r.url(), method: r.method() }));
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => /Content.Security.Policy/i.test(m.text()) && errors.push(m.text()));
  if (options.route) await options.route(page);
  const response = await page.goto(url + (options.query || ""));
  assert.match(response.headers()["content-security-policy"], /default-src 'none'/);
  return {
    page,
    requests,
    errors,
    close: async () => {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function ready(page) {
  await page.waitForSelector("body[data-ready=true]", { timeout: 120_000 });
}

