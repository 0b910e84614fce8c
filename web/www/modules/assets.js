// The deployment's files: named by their sha256 (assets/manifest.json, which web/postbuild.mjs
// writes), downloaded with a progress bar, checked, and kept in the Cache API so that a second
// visit downloads nothing. Every URL is relative, so the app works from any static host under
// any path prefix, and nothing leaves the origin.
import { $, element, state } from "./page.js";

// Paths below assets/.
export const MODEL = "utkface-celeba-faceres.fmtl";
export const REPORT = "utkface-celeba-faceres.report.json";
export const WEIGHTS = { detector: "weights/blazeface.fmh", faceres: "weights/faceres.fmh" };
export const SAMPLES = [1, 2, 3, 4, 5, 6].map((i) => `samples/sample${i}.jpg`);
// The networks the app needs before its first prediction.
export const NETWORKS = [WEIGHTS.detector, WEIGHTS.faceres, MODEL];
const CACHE = "facemtl-assets";
// Where the Cache API keeps the manifest of the last visit.
const MANIFEST_KEY = "assets/manifest.json?kept";

// The Cache API store, or null where the page is not a secure context.
async function openCache() {
  return self.caches ? await caches.open(CACHE).catch(() => null) : null;
}

// The asset's URL, named by its content: a redeploy that changes the file changes the URL,
// which keys the Cache API store (and defeats any stale HTTP cache on the way).
export function assetUrl(path, manifest = state.manifest) {
  const hash = manifest?.[path];
  if (!hash) throw new Error(`${path} is not in the app's asset manifest`);
  return `assets/${path}?sha256=${hash}`;
}

async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// A row with a progress bar under `parent`: its `update(received, total)` and `done(cached)`.
function progressRow(parent, label) {
  const bar = element("progress", { max: 1, value: 0 });
  const size = element("span", { class: "size" });
  parent.append(element("div", { class: "download" }, element("span", {}, label), " ", bar, " ", size));
  const megabytes = (n) => `${(n / 1e6).toFixed(1)} MB`;
  return {
    update(received, total) {
      if (total) bar.value = Math.min(received / total, 1);
      else bar.removeAttribute("value");
      size.textContent = megabytes(received);
    },
    done(received, cached) {
      bar.value = 1;
      size.textContent = `${megabytes(received)}${cached ? " (cached)" : ""}`;
    },
  };
}

// The body of `response` as bytes, reported to `progress` as they arrive.
async function readBody(response, progress) {
  // A compressed response's content-length counts compressed bytes, while the reader yields
  // decoded ones: web/serve.mjs states the decoded length; elsewhere the bar is indeterminate.
  const headers = response.headers;
  const total = Number(headers.get("x-decoded-length") || (headers.get("content-encoding") ? 0 : headers.get("content-length")));
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    progress.update(received, total);
  }
  const bytes = new Uint8Array(received);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}

// Fetch an asset with a progress bar, check it against its sha256, and keep it in the Cache
// API.
export async function download(manifest, path, label, parent = $("downloads")) {
  const url = assetUrl(path, manifest);
  const progress = progressRow(parent, label);
  const cache = await openCache();
  let response = cache ? await cache.match(url) : null;
  const cached = !!response;
  if (!response) {
    response = await fetch(url);
    if (!response.ok) throw new Error(`could not download ${label} (${path}: HTTP ${response.status})`);
  }
  const bytes = await readBody(response, progress);
  progress.done(bytes.length, cached);
  if (self.crypto?.subtle && (await sha256Hex(bytes)) !== manifest[path]) {
    if (cache) await cache.delete(url);
    throw new Error(`${label} (${path}) arrived damaged: its sha256 does not match the app's manifest`);
  }
  if (cache && !cached) await cache.put(url, new Response(bytes, { headers: { "x-decoded-length": String(bytes.length) } })).catch(() => {});
  return bytes;
}

export async function fetchManifest() {
  const response = await fetch("assets/manifest.json", { cache: "no-cache" });
  if (!response.ok) throw new Error(`could not download the asset manifest (HTTP ${response.status})`);
  return response.json();
}

// The manifest of the last visit whose networks are all in the Cache API, or null.
export async function keptManifest() {
  const cache = await openCache();
  const response = cache && (await cache.match(MANIFEST_KEY));
  if (!response) return null;
  const manifest = await response.json().catch(() => null);
  if (!manifest || !NETWORKS.every((path) => manifest[path])) return null;
  for (const path of NETWORKS) if (!(await cache.match(assetUrl(path, manifest)))) return null;
  return manifest;
}

export async function keepManifest(manifest) {
  const cache = await openCache();
  await cache?.put(MANIFEST_KEY, new Response(JSON.stringify(manifest))).catch(() => {});
}

// Drop cached files that the deployed app no longer names (an older model, older weights).
export async function pruneCache() {
  const cache = await openCache();
  if (!cache) return;
  const wanted = new Set([...Object.keys(state.manifest).map((path) => assetUrl(path)), MANIFEST_KEY].map((url) => new URL(url, location.href).href));
  for (const request of await cache.keys()) if (!wanted.has(request.url)) await cache.delete(request);
  for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
}
