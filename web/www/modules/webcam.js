// The webcam: frames predicted one after another, with the faces followed from frame to frame
// (on the WebAssembly side), until the visitor stops it.
import { $, showError, state } from "./page.js";
import { drawFaces, remember, show } from "./results.js";

function yieldToPage() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

// The camera's stream playing in the page's video element, or null (with the reason shown).
async function openCamera() {
  if (!navigator.mediaDevices?.getUserMedia) {
    showError("This browser offers no camera.");
    return null;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
  } catch (e) {
    showError(`The camera could not be used (${e.name === "NotAllowedError" ? "permission denied" : e.message || e.name}).`);
    return null;
  }
  const video = $("video");
  video.srcObject = stream;
  await video.play();
  return stream;
}

export async function startWebcam() {
  showError("");
  const stream = await openCamera();
  if (!stream) return;
  $("output").hidden = false;
  $("webcam").textContent = "Stop the webcam";
  // Frames shown, faces in them, and faces that went through the backbone (the others kept
  // what was said of them a few frames before): for the benchmark, in window.facemtlWebcam.
  const run = { stream, frames: 0, faces: 0, computed: 0, shown: -1, since: performance.now(), stopped: false };
  window.facemtlWebcam = run;
  state.webcam = run;
  while (!run.stopped) {
    // On the CPU backend a prediction resolves without leaving the microtask queue: yield, so
    // that the page stays responsive and the stop button works (through a message, which the
    // browser does not delay as it delays nested timeouts by 4 ms).
    await yieldToPage();
    if (!(await nextFrame(run))) break;
  }
  stopWebcam();
}

// Predict and show the video's current frame; false when the webcam must stop.
async function nextFrame(run) {
  const video = $("video");
  if (!video.videoWidth) {
    await new Promise((next) => setTimeout(next, 50));
    return true;
  }
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  // Resized only when the camera's size changes: setting a size clears the canvas anew.
  if (canvas.width !== video.videoWidth || canvas.height !== video.videoHeight) {
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
  }
  ctx.drawImage(video, 0, 0);
  const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height);
  let result;
  try {
    result = await state.app.predict_rgba(new Uint8Array(pixels.data.buffer), canvas.width, canvas.height);
  } catch (e) {
    showError(`webcam: ${e.message || e}`);
    return false;
  }
  if (run.stopped) return false;
  // The boxes go on the very frame they were found in (still on the canvas).
  drawFaces(ctx, result);
  // The table changes only when a face comes, goes or is computed again: a frame whose faces
  // were all followed keeps it, and the page does no layout work for it.
  if (result.stages.faces_computed > 0 || result.faces.length !== run.shown) {
    show(result, "webcam frame", null);
    run.shown = result.faces.length;
  } else remember(result, "webcam frame");
  run.frames += 1;
  run.faces += result.faces.length;
  run.computed += result.stages.faces_computed;
  const seconds = (performance.now() - run.since) / 1000;
  $("fps").textContent = `${(run.frames / seconds).toFixed(1)} frames/s`;
  document.body.dataset.fps = (run.frames / seconds).toFixed(2);
  return true;
}

export function stopWebcam() {
  const run = state.webcam;
  if (!run) return;
  run.stopped = true;
  run.stream.getTracks().forEach((t) => t.stop());
  state.webcam = null;
  $("webcam").textContent = "Use the webcam";
}
