// A photo in, its faces out: the prediction, the boxes drawn on the photo, the table (one
// column per task of the model, as the prediction's answers name them), and "Download JSON".
import { $, element, showError, showNotice, state } from "./page.js";

// iOS Safari draws no canvas over 16.7 megapixels (4096 x 4096); larger photos are shown
// scaled down (the prediction itself reads every pixel).
const MAX_CANVAS_PIXELS = 4096 * 4096;

export async function predictFile(file) {
  showError("");
  showNotice("");
  // Checked before a byte is read, with the limit the native `predict` keeps.
  const limit = wasmBindings.App.max_photo_bytes();
  if (file.size > limit) {
    showError(`${file.name} is ${(file.size / 1e6).toFixed(0)} MB; photos up to ${limit / 1e6} MB are accepted.`);
    return;
  }
  await predictBytes(new Uint8Array(await file.arrayBuffer()), file.name);
}

export async function predictBytes(bytes, name) {
  if (!state.app || !state.header) {
    showError("The model is still loading.");
    return;
  }
  state.lastBytes = bytes;
  let result;
  try {
    result = await state.app.predict_photo(bytes);
  } catch (e) {
    showError(`${name}: ${e.message || e}`);
    return;
  }
  const url = URL.createObjectURL(new Blob([bytes]));
  const img = new Image();
  const display = (ctx) => {
    URL.revokeObjectURL(url);
    try {
      show(result, name, ctx);
    } catch (e) {
      showError(`${name}: the prediction could not be shown (${e.message || e})`);
    }
  };
  img.onload = () => {
    // The browser applies EXIF orientation like the decoder does.
    const canvas = $("canvas");
    const scale = Math.min(1, Math.sqrt(MAX_CANVAS_PIXELS / (result.width * result.height)));
    canvas.width = Math.floor(result.width * scale);
    canvas.height = Math.floor(result.height * scale);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    ctx.scale(canvas.width / result.width, canvas.height / result.height);
    display(ctx);
  };
  img.onerror = () => display(null);
  img.src = url;
}

// The last photo predicted again (after the model changed), if there is one.
export function predictAgain() {
  if (state.lastBytes && !state.webcam) predictBytes(state.lastBytes, state.lastName);
}

// One task's answer as a person reads it: a class's likeliest label with its probability
// ("can't tell" when the model's calibration says the answer is little better than a guess),
// or a value with its interval (the central 80 % of the face's age distribution) or rounded to
// the model's typical miss.
function answerText(answer) {
  if (answer.kind === "value") {
    const { value, low, high, plus_minus } = answer;
    if (low !== undefined && high !== undefined) return `${value.toFixed(0)} (${low.toFixed(0)}–${high.toFixed(0)})`;
    if (!(plus_minus > 0)) return value.toFixed(1);
    const digits = plus_minus >= 1 ? 0 : 1;
    return `${value.toFixed(digits)} ± ${plus_minus.toFixed(digits)}`;
  }
  if (answer.cant_tell) return "can't tell";
  return classText(ranked(answer)[0]);
}

const ranked = (answer) => [...answer.probabilities].sort((a, b) => b[1] - a[1]);
const classText = ([label, p]) => `${label} ${(100 * p).toFixed(0)} %`;

// A table cell for an answer: a class of more than two labels shows its likeliest one, and
// the others on demand, so that a row stays one line on a phone; "can't tell" shows the
// probabilities it weighed on demand too.
function answerCell(answer) {
  if (answer.kind === "value" || (answer.probabilities.length <= 2 && !answer.cant_tell)) {
    return element("td", {}, answerText(answer));
  }
  const [top, ...rest] = ranked(answer);
  const [summary, more] = answer.cant_tell ? [answerText(answer), [top, ...rest]] : [classText(top), rest];
  const details = element("details", {}, element("summary", {}, summary), more.map(classText).join(", "));
  return element("td", {}, details);
}

export function drawFaces(ctx, result) {
  // Photo pixels per pixel on screen: the labels are sized for the screen, so that they stay
  // legible on a phone, where a large photo is shown a tenth of its size.
  const shown = ctx.canvas.getBoundingClientRect().width;
  const scale = shown > 0 ? result.width / shown : Math.max(result.width, result.height) / 800;
  ctx.lineWidth = 2 * scale;
  ctx.font = `${13 * scale}px sans-serif`;
  result.faces.forEach((f, i) => {
    const b = f.bbox;
    ctx.strokeStyle = "#ffcc00";
    ctx.strokeRect(b.x_min, b.y_min, b.x_max - b.x_min, b.y_max - b.y_min);
    // A label that would cover its neighbours' (more faces than room) is the face's number
    // alone: the table below gives its answers.
    const full = `${i + 1}: ${f.answers.map((a) => answerText(a)).join(", ")}`;
    const label = ctx.measureText(full).width <= result.width / result.faces.length ? full : `${i + 1}`;
    const w = ctx.measureText(label).width + 6 * scale;
    const h = 17 * scale;
    // Keep the label inside the picture, also for faces at its right edge.
    const x = Math.max(0, Math.min(b.x_min, result.width - w));
    ctx.fillStyle = "rgba(0,0,0,0.7)";
    ctx.fillRect(x, Math.max(0, b.y_min - h), w, h);
    ctx.fillStyle = "#fff";
    ctx.fillText(label, x + 3 * scale, Math.max(h - 4 * scale, b.y_min - 4 * scale));
  });
}

// The latest prediction, for "Download JSON" (and the tests, as window.facemtlLast).
export function remember(result, name) {
  state.last = result;
  window.facemtlLast = result;
  state.lastName = name;
}

const row = (cells, tag) => element("tr", {}, ...cells.map((cell) => (cell instanceof Node ? cell : element(tag, {}, cell))));

export function show(result, name, ctx) {
  remember(result, name);
  $("output").hidden = false;
  if (ctx) drawFaces(ctx, result);
  const table = $("results");
  // The columns of the model that made this prediction.
  const tasks = result.faces[0]?.answers.map((a) => a.task) ?? state.tasks.map((t) => t.name);
  table.tHead.replaceChildren(row(["#", ...tasks, "detector score"], "th"));
  table.tBodies[0].replaceChildren(...result.faces.map((f, i) => row([i + 1, ...f.answers.map(answerCell), f.score.toFixed(2)], "td")));
  if (result.found === 0) showNotice(`No face found in ${name}.`);
  else if (result.found > result.faces.length) showNotice(`${result.found} faces found; the ${result.faces.length} most certain are analysed.`);
  else showNotice(`${result.found} face${result.found > 1 ? "s" : ""} in ${name} (${result.milliseconds.toFixed(0)} ms).`);
  document.body.dataset.predictions = String(Number(document.body.dataset.predictions || 0) + 1);
}

// The prediction as `facemtl predict` writes its faces, with the photo's name.
export function downloadJson() {
  if (!state.last) return;
  const faces = state.last.faces.map(({ answers, ...face }) => face);
  const blob = new Blob([JSON.stringify({ file: state.lastName, ...state.last, faces }, null, 2)], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `${state.lastName.replace(/\.[^.]*$/, "") || "faces"}.json`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}
