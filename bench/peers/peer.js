// One face analyser in a page, for bench/peers.mjs: ?peer=facemtl|faceapi|human&backend=...
// `window.peerReady` resolves once its models are loaded; `window.peerRun(what)` analyses a
// photo (its JPEG bytes, decoding included) or the 640x480 webcam frame (raw pixels) and
// resolves to the number of faces (and, for facemtl, where the time went). The peers are configured for what facemtl answers: faces
// with gender and age (face-api: SSD MobileNet v1, 68 landmarks, age/gender; Human: BlazeFace,
// mesh, faceres description), each with frame caching off so that repeated photos are
// analysed anew.
const params = new URLSearchParams(location.search);
const peer = params.get("peer");
const backend = params.get("backend");

async function bytes(url) {
  return new Uint8Array(await (await fetch(url)).arrayBuffer());
}

// A photo decoded by the browser onto a canvas (the peers take canvases, not JPEG bytes).
async function decoded(url) {
  const img = await createImageBitmap(new Blob([await bytes(url)]));
  const canvas = Object.assign(document.createElement("canvas"), { width: img.width, height: img.height });
  canvas.getContext("2d").drawImage(img, 0, 0);
  return canvas;
}

// The webcam frame: the first gallery photo, covered into 640x480.
async function webcamFrame() {
  const img = await createImageBitmap(new Blob([await bytes("photos/sample1.jpg")]));
  const canvas = Object.assign(document.createElement("canvas"), { width: 640, height: 480 });
  const scale = Math.max(640 / img.width, 480 / img.height);
  canvas.getContext("2d").drawImage(img, (640 - img.width * scale) / 2, (480 - img.height * scale) / 2, img.width * scale, img.height * scale);
  return canvas;
}

async function facemtl() {
  const glue = params.get("glue");
  const bindings = await import(`./ours/${glue}.js`);
  await bindings.default({ module_or_path: `./ours/${glue}_bg.wasm` });
  const app = await bindings.App.create(backend === "webgpu" ? "webgpu" : "cpu");
  app.load_detector(await bytes("ours/assets/weights/blazeface.fmh"));
  app.load_backbone("faceres", await bytes("ours/assets/weights/faceres.fmh"));
  app.load_model(await bytes("ours/assets/utkface-celeba-faceres.fmtl"));
  window.facemtlApp = app;
  return async (what) => {
    if (what.frame) {
      const pixels = what.frame.getContext("2d", { willReadFrequently: true }).getImageData(0, 0, 640, 480).data;
      const result = await app.predict_rgba(new Uint8Array(pixels.buffer), 640, 480);
      return { faces: result.faces.length, stages: result.stages };
    }
    const result = await app.predict_photo(await bytes(what.url));
    return { faces: result.faces.length, stages: result.stages };
  };
}

async function faceapi() {
  const api = await import("./face-api/face-api.esm.js");
  api.tf.setWasmPaths("./tfjs-wasm/");
  await api.tf.setBackend(backend);
  await api.tf.ready();
  for (const net of [api.nets.ssdMobilenetv1, api.nets.faceLandmark68Net, api.nets.ageGenderNet]) {
    await net.loadFromUri("./face-api/model");
  }
  const options = new api.SsdMobilenetv1Options({ minConfidence: 0.5 });
  return async (what) => {
    const canvas = what.frame || (await decoded(what.url));
    return { faces: (await api.detectAllFaces(canvas, options).withFaceLandmarks().withAgeAndGender()).length };
  };
}

async function human() {
  const { Human } = await import("./human/human.esm.js");
  const off = { enabled: false };
  const h = new Human({
    backend,
    modelBasePath: "./human/models/",
    wasmPath: "./tfjs-wasm/",
    warmup: "none",
    cacheSensitivity: 0,
    filter: off,
    face: {
      enabled: true,
      detector: { rotation: false, maxDetected: 20 },
      mesh: { enabled: true },
      iris: off,
      emotion: off,
      description: { enabled: true },
      antispoof: off,
      liveness: off,
      attention: off,
    },
    body: off,
    hand: off,
    object: off,
    gesture: off,
    segmentation: off,
  });
  await h.load();
  return async (what) => {
    const canvas = what.frame || (await decoded(what.url));
    return { faces: (await h.detect(canvas)).face.length };
  };
}

const runners = { facemtl, faceapi, human };
window.peerReady = (async () => {
  const run = await runners[peer]();
  const frame = await webcamFrame();
  window.peerRun = (what) => run(what === "webcam" ? { frame } : { url: what });
})();
