// The Lab's Web Worker: it loads the page's full WebAssembly module and trains there, so
// that the page (and the webcam) stay responsive. Every call into the module goes through one
// queue: a request that arrives mid-epoch (a model file, a pause) runs between two epochs.
//
// Messages in:  init { js, wasm, integrity, backend, bytes }, start { request }, pause, resume, reset, model
// Messages out: ready { info }, started, epoch { report, seconds, faces }, paused, resumed,
//               finished { results }, reset, model { bytes }, error { message }
//
// Pause and resume only set what the visitor wants (`running`); one loop acts on it between
// epochs. Each is answered from the queue, in the order the messages came, with what the
// worker then does: a pause and a resume sent in the same tick end in "resumed", never in a
// "paused" that epochs follow. A run's end is answered by "finished" once, paused or not.

let lab = null;
let running = false;
let looping = false;
// Whether the run's end has been answered (true while there is no run).
let reported = true;
let queue = Promise.resolve();

// `fn` after every call queued before it; its result (or error) to the caller.
function exclusive(fn) {
  const result = queue.then(fn);
  queue = result.catch(() => {});
  return result;
}

const breathe = () => new Promise((resolve) => setTimeout(resolve, 0));

// The next epoch's report, or null when the worker should not train now.
const nextEpoch = () => exclusive(async () => (running && !lab.finished() ? await lab.step() : null));

// Trains while `running`; only one loop at a time. From the epoch that says "stop" to
// `looping` cleared nothing yields to the event loop, so no resume can come in between and
// find a loop that is about to end.
async function loop() {
  if (looping) return;
  looping = true;
  try {
    for (let epoch = await nextEpoch(); epoch; epoch = await nextEpoch()) {
      postMessage({ type: "epoch", ...epoch });
      await breathe(); // lets a pause or a model request in
    }
    if (!reported && lab.finished()) {
      reported = true;
      running = false;
      const results = await exclusive(() => lab.results());
      postMessage({ type: "finished", results });
    }
  } catch (e) {
    running = false;
    postMessage({ type: "error", message: String(e?.message || e) });
  } finally {
    looping = false;
  }
}

// Answers a pause or a resume once the epoch in progress (if any) has ended: what the worker
// does from then on. A run at its end is answered by "finished" instead.
async function acknowledge() {
  await exclusive(() => {});
  if (lab.finished()) return;
  postMessage({ type: running ? "resumed" : "paused" });
}

onmessage = async ({ data }) => {
  try {
    switch (data.type) {
      case "init": {
        const bindings = await import(data.js);
        await bindings.default({ module_or_path: new Request(data.wasm, { integrity: data.integrity }) });
        lab = await bindings.Lab.create(data.backend, data.bytes);
        postMessage({ type: "ready", info: lab.info() });
        break;
      }
      case "start":
        running = false;
        await exclusive(() => lab.start(data.request));
        reported = false;
        running = true;
        postMessage({ type: "started" });
        loop();
        break;
      case "pause":
        running = false;
        await acknowledge();
        break;
      case "resume":
        running = true;
        loop();
        await acknowledge();
        break;
      case "reset":
        running = false;
        reported = true;
        await exclusive(() => lab.reset());
        postMessage({ type: "reset" });
        break;
      case "model": {
        const bytes = await exclusive(() => lab.model_file());
        postMessage({ type: "model", purpose: data.purpose, bytes }, [bytes.buffer]);
        break;
      }
    }
  } catch (e) {
    postMessage({ type: "error", message: String(e?.message || e) });
  }
};
