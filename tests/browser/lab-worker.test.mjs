// The Lab's worker (web/www/lab-worker.js) driven message by message, with a stand-in for the
// WebAssembly `Lab` whose epochs take a few milliseconds: what the worker answers to pause,
// resume and reset sent at awkward moments. The real module trains in lab.test.mjs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

const SOURCE = readFileSync(resolve(import.meta.dirname, "../../web/www/lab-worker.js"), "utf8");
const EPOCH_MS = 15;

// A stand-in module: `Lab` counts epochs up to `max_epochs` of the started request.
const FAKE_MODULE = `data:text/javascript,${encodeURIComponent(`
export default async function init() {}
export class Lab {
  static async create() { return new Lab(); }
  info() { return {}; }
  start(request) { this.run = { epoch: 0, max: request.settings.max_epochs }; }
  finished() { return !this.run || this.run.epoch >= this.run.max; }
  async step() {
    const run = this.run;
    if (!run) throw new Error("no run: press Train");
    await new Promise((r) => setTimeout(r, ${EPOCH_MS}));
    return { report: { epoch: run.epoch++ }, seconds: 0, faces: 0 };
  }
  async results() { return {}; }
  reset() { this.run = null; }
}`)}`;

/// The worker's script in this process: `send` hands it a message, `messages` holds what it
/// posted, `until` waits for a posted message matching `match`.
async function worker() {
  const messages = [];
  const waiting = [];
  const post = (m) => {
    messages.push(m);
    for (const w of waiting.filter((w) => w.match(m))) {
      waiting.splice(waiting.indexOf(w), 1);
      w.resolve(m);
    }
  };
  const AsyncFunction = (async () => {}).constructor;
  const body = `let onmessage;\n${SOURCE}\nreturn (data) => onmessage({ data });`;
  const send = await new AsyncFunction("postMessage", body)(post);
  const until = (match, ms = 5000) =>
    new Promise((resolve, reject) => {
      const found = messages.find(match);
      if (found) return resolve(found);
      const timer = setTimeout(() => reject(new Error(`no such message after ${ms} ms: ${JSON.stringify(messages.map((m) => m.type))}`)), ms);
      waiting.push({ match, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  // The page names the full module by absolute URL, with its hash; the stand-in fetches nothing.
  await send({ type: "init", js: FAKE_MODULE, wasm: "http://localhost/full_bg.wasm", integrity: "sha384-none", backend: "cpu", bytes: new Uint8Array() });
  await until((m) => m.type === "ready");
  return { send, messages, until };
}

const start = (send, epochs) => send({ type: "start", request: { settings: { max_epochs: epochs } } });
const epochs = (messages) => messages.filter((m) => m.type === "epoch").map((m) => m.report.epoch);
const states = (messages) => messages.filter((m) => ["paused", "resumed", "finished"].includes(m.type)).map((m) => m.type);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test("a pause and a resume sent in the same tick end in 'resumed', and every epoch runs once", async () => {
  const { send, messages, until } = await worker();
  await start(send, 8);
  await until((m) => m.type === "epoch" && m.report.epoch === 1);
  send({ type: "pause" });
  send({ type: "resume" });
  await until((m) => m.type === "finished");
  await sleep(3 * EPOCH_MS);
  assert.deepEqual(epochs(messages), [0, 1, 2, 3, 4, 5, 6, 7], "every epoch once, in order");
  assert.deepEqual(states(messages), ["resumed", "resumed", "finished"], "never 'paused' while epochs go on");
});

test("after 'paused' no epoch runs until the resume, and the run then ends once", async () => {
  const { send, messages, until } = await worker();
  await start(send, 5);
  await until((m) => m.type === "epoch" && m.report.epoch === 0);
  send({ type: "pause" });
  await until((m) => m.type === "paused");
  const before = epochs(messages).length;
  await sleep(5 * EPOCH_MS);
  assert.equal(epochs(messages).length, before, "no epoch while paused");
  send({ type: "resume" });
  await until((m) => m.type === "finished");
  send({ type: "resume" }); // a resume after the end changes nothing
  await sleep(3 * EPOCH_MS);
  assert.deepEqual(epochs(messages), [0, 1, 2, 3, 4]);
  assert.equal(messages.filter((m) => m.type === "finished").length, 1, "'finished' once");
  assert.equal(states(messages).at(-1), "finished");
});

test("a pause that arrives during the last epoch still ends the run with 'finished'", async () => {
  const { send, messages, until } = await worker();
  await start(send, 3);
  await until((m) => m.type === "epoch" && m.report.epoch === 1);
  await sleep(EPOCH_MS / 3); // the last epoch has begun
  send({ type: "pause" });
  await until((m) => m.type === "finished");
  await sleep(3 * EPOCH_MS);
  assert.deepEqual(epochs(messages), [0, 1, 2]);
  assert.deepEqual(states(messages), ["finished"], "no 'paused' for a run that has ended");
});

test("a reset mid-run drops it: no later epoch and no 'finished'", async () => {
  const { send, messages, until } = await worker();
  await start(send, 50);
  await until((m) => m.type === "epoch" && m.report.epoch === 2);
  send({ type: "reset" });
  await until((m) => m.type === "reset");
  const before = epochs(messages).length;
  await sleep(5 * EPOCH_MS);
  assert.equal(epochs(messages).length, before);
  assert.ok(!messages.some((m) => m.type === "finished" || m.type === "error"), JSON.stringify(states(messages)));
});
