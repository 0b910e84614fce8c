// The Lab's Web Worker: it loads the same WebAssembly module as the page and trains there, so
// that the page (and the webcam) stay responsive. Every call into the module goes through one
// queue: a request that arrives mid-epoch (a model file, a pause) runs between two epochs.
//
// Messages in:  init { js, wasm, backend, bytes }, start { request }, pause, resume, reset, model
// Messages out: ready { info }, started, epoch { report, seconds, faces }, paused,
//               finished { results }, reset, model { bytes }, error { message }

let lab = null;
let running = false;
let looping = false;
let queue = Promise.resolve();

// `fn` after every call queued before it; its result (or error) to the caller.
function exclusive(fn) {
  const result = queue.then(fn);
  queue = result.catch(() => {});
  return result;
}

const breathe = () => new Promise((resolve) => setTimeout(resolve, 0));

async function loop() {
  if (looping) return;
  looping = true;
  try {
    for (;;) {
      const epoch = await exclusive(async () => (running && !lab.finished() ? JSON.parse(await lab.step()) : null));
      if (!epoch) break;
      postMessage({ type: "epoch", ...epoch });
      await breathe(); // lets a pause or a model request in
    }
    if (running && lab.finished()) {
      running = false;
      const results = await exclusive(async () => JSON.parse(await lab.results()));
      postMessage({ type: "finished", results });
    }
  } catch (e) {
    running = false;
    postMessage({ type: "error", message: String(e?.message || e) });
  } finally {
    looping = false;
  }
}

onmessage = async ({ data }) => {
  try {
    switch (data.type) {
      case "init": {
        const bindings = await import(data.js);
        await bindings.default({ module_or_path: data.wasm });
        lab = await bindings.Lab.create(data.backend, data.bytes);
        postMessage({ type: "ready", info: JSON.parse(lab.info()) });
        break;
      }
      case "start":
        running = false;
        await exclusive(() => lab.start(JSON.stringify(data.request)));
        running = true;
        postMessage({ type: "started" });
        loop();
        break;
      case "pause":
        running = false;
        await exclusive(() => {});
        postMessage({ type: "paused" });
        break;
      case "resume":
        running = true;
        loop();
        break;
      case "reset":
        running = false;
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
