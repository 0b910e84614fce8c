// The Lab's page side: its data downloaded with a progress bar, the controls, and the live
// charts of a run that trains in a Web Worker (lab-worker.js) with the native trainer's code.
// Loaded only when the visitor opens the Lab. `window.facemtlLab` exposes the runs for tests
// and benchmarks.
import { download } from "./assets.js";
import { colour, drawGroups, figureText, lineChart } from "./charts.js";
import { loadUserModel } from "./model.js";
import { $, element, state } from "./page.js";
import { predictAgain } from "./results.js";

const LAB_FILE = "lab/lab.fml";

// Each run: its request, its epoch reports, its timing and, at the end, its results.
const lab = { runs: [], info: null, worker: null, state: "closed" };
window.facemtlLab = lab;

function setState(state) {
  lab.state = state;
  document.body.dataset.labState = state;
  const busy = state === "running" || state === "starting";
  $("lab-train").disabled = busy || state === "loading";
  $("lab-pause").disabled = state !== "running";
  $("lab-resume").disabled = state !== "paused";
  $("lab-reset").disabled = !(state === "running" || state === "paused" || state === "finished");
  const trained = current()?.reports.length > 0 && state !== "running";
  $("lab-use").disabled = !trained;
  $("lab-download").disabled = !trained;
}

const current = () => lab.runs.at(-1);

function status(text) {
  $("lab-status").textContent = text;
}

// The full module (the CPU one leaves the Lab out), as the page's loader names it: absolute
// URLs for the worker, and the wasm's hash.
function moduleUrls() {
  const full = window.wasmModules?.full;
  if (!full) throw new Error("the page does not name its WebAssembly modules");
  return { js: new URL(full.js, location.href).href, wasm: new URL(full.wasm, location.href).href, integrity: full.integrity };
}

export async function open() {
  setState("loading");
  const bytes = await download(state.manifest, LAB_FILE, "Lab data", $("lab-downloads"));
  lab.downloadedBytes = bytes.length;
  const worker = new Worker("lab-worker.js", { type: "module" });
  lab.worker = worker;
  const ready = new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => (data.type === "ready" ? resolve(data.info) : data.type === "error" ? reject(new Error(data.message)) : null);
    worker.onerror = (e) => reject(new Error(e.message || "the Lab's worker failed"));
  });
  worker.postMessage({ type: "init", ...moduleUrls(), backend: state.app.backend, bytes }, [bytes.buffer]);
  lab.info = await ready;
  worker.onmessage = ({ data }) => onWorker(data);
  showControls(lab.info);
  $("lab-open").hidden = true;
  $("lab-body").hidden = false;
  setState("idle");
  status(`Ready: ${lab.info.backend === "webgpu" ? "training on WebGPU" : "training on the CPU (WebAssembly)"}, in a Web Worker.`);
}

function showControls(info) {
  $("lab-licence").textContent = info.header.licence;
  const sets = $("lab-set");
  sets.replaceChildren(
    ...info.header.sets.map((s) => {
      const o = document.createElement("option");
      o.value = s.name;
      o.textContent = `${s.title} (${s.splits[0]} training faces)`;
      return o;
    }),
  );
  const showTasks = () => {
    const set = info.header.sets.find((s) => s.name === sets.value);
    $("lab-tasks").replaceChildren(
      ...set.tasks.map((t) => element("label", {}, element("input", { type: "checkbox", name: "lab-task", value: t.name, checked: "" }), ` ${t.name}`)),
    );
  };
  sets.addEventListener("change", showTasks);
  showTasks();
  const d = info.defaults;
  $("lab-weighting").value = d.weighting;
  $("lab-lambda").value = d.lambda;
  $("lab-freeze").value = d.freeze_mode;
  $("lab-patience").value = d.patience;
  $("lab-lr").value = d.lr;
  $("lab-epochs").value = d.max_epochs;
  $("lab-seed").value = d.seed;
  const lambda = () => {
    $("lab-lambda-value").textContent = Number($("lab-lambda").value).toFixed(2);
    $("lab-lambda").disabled = $("lab-weighting").value !== "learned";
  };
  $("lab-lambda").addEventListener("input", lambda);
  $("lab-weighting").addEventListener("change", lambda);
  lambda();
  $("lab-controls").addEventListener("submit", (e) => {
    e.preventDefault();
    train();
  });
  $("lab-pause").addEventListener("click", () => lab.worker.postMessage({ type: "pause" }));
  $("lab-resume").addEventListener("click", () => {
    setState("running");
    lab.worker.postMessage({ type: "resume" });
  });
  $("lab-reset").addEventListener("click", () => lab.worker.postMessage({ type: "reset" }));
  $("lab-use").addEventListener("click", () => lab.worker.postMessage({ type: "model", purpose: "use" }));
  $("lab-download").addEventListener("click", () => lab.worker.postMessage({ type: "model", purpose: "download" }));
  $("lab-overlay").addEventListener("change", draw);
}

// The run the controls describe: the native trainer's settings (`RunSettings`).
function request() {
  const number = (id) => Number($(id).value);
  return {
    set: $("lab-set").value,
    tasks: [...document.querySelectorAll('input[name="lab-task"]:checked')].map((i) => i.value),
    settings: {
      ...lab.info.defaults,
      weighting: $("lab-weighting").value,
      lambda: number("lab-lambda"),
      freeze_mode: $("lab-freeze").value,
      patience: Math.max(1, Math.round(number("lab-patience"))),
      lr: number("lab-lr"),
      max_epochs: Math.max(1, Math.round(number("lab-epochs"))),
      seed: Math.max(0, Math.round(number("lab-seed"))),
    },
  };
}

function train() {
  const req = request();
  if (req.tasks.length === 0) {
    status("Choose at least one task.");
    return;
  }
  if (!(req.settings.lr > 0)) {
    status("The learning rate must be a positive number.");
    return;
  }
  lab.runs.push({ request: req, reports: [], seconds: [], started: performance.now(), results: null });
  setState("starting");
  lab.worker.postMessage({ type: "start", request: req });
  draw();
}

function describe(run) {
  const s = run.request.settings;
  const weighting = s.weighting === "learned" ? `learned, λ ${s.lambda}` : s.weighting;
  return `${run.request.tasks.join("+")}, ${weighting}, ${s.freeze_mode}`;
}

function onWorker(data) {
  const run = current();
  switch (data.type) {
    case "started":
      setState("running");
      break;
    case "epoch": {
      run.reports.push(data.report);
      run.seconds.push(data.seconds);
      const epoch = data.report.rows[0].epoch;
      const mean = run.seconds.reduce((a, b) => a + b, 0) / run.seconds.length;
      status(`Epoch ${epoch + 1} of ${run.request.settings.max_epochs} on ${data.faces} faces: ${data.seconds.toFixed(2)} s (mean ${mean.toFixed(2)} s per epoch).`);
      draw();
      break;
    }
    case "paused":
      setState("paused");
      status(`Paused after epoch ${run.reports.length}.`);
      break;
    case "resumed":
      setState("running");
      break;
    case "finished":
      run.results = data.results;
      run.wall = (performance.now() - run.started) / 1000;
      setState("finished");
      status(`Finished after ${run.reports.length} epochs in ${run.wall.toFixed(1)} s. Test: ${figures(run.request, data.results.test)}.`);
      drawGroups($("lab-groups"), data.results.groups);
      draw();
      break;
    case "reset":
      lab.runs.pop();
      setState("idle");
      status("Reset: the run was dropped.");
      $("lab-groups").replaceChildren();
      draw();
      break;
    case "model":
      if (data.purpose === "use") {
        if (loadUserModel(data.bytes, "The Lab's model")) {
          status("The app now predicts with the model just trained: drop a photo above.");
          predictAgain();
        }
      } else {
        const a = document.createElement("a");
        a.href = URL.createObjectURL(new Blob([data.bytes], { type: "application/octet-stream" }));
        a.download = `lab-${run.request.set}-${run.request.tasks.join("-")}.fmtl`;
        a.click();
        setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
      }
      break;
    case "error":
      setState(run?.reports.length ? "paused" : "idle");
      status(`The Lab stopped: ${data.message}`);
      break;
  }
}

// The task named `name` as the Lab's data describes it (its metric).
const overview = (name) => lab.info.tasks.find((t) => t.name === name);

function figures(req, evaluation) {
  return evaluation.metrics.map((m, i) => figureText(overview(req.tasks[i]), m)).join(", ");
}

// Per task: loss (training solid, validation dashed) with its freeze point, and its validation
// metric; then the loss weights. The previous run, when overlaid, is drawn faded and dotted.
function draw() {
  const charts = $("lab-charts");
  const run = current();
  if (!run) {
    charts.replaceChildren();
    return;
  }
  const previous = $("lab-overlay").checked ? lab.runs.at(-2) : null;
  const rows = (r, task) => r.reports.flatMap((e) => e.rows.filter((row) => row.task === task));
  const freezes = (r, task, colour, who) =>
    r.reports.flatMap((e) =>
      e.events
        .filter((ev) => ev.Converged && r.request.tasks[ev.Converged.task] === task)
        .map((ev) => ({ x: e.rows[0].epoch, colour, label: `${who}frozen at ${e.rows[0].epoch} (best ${ev.Converged.restore_epoch})` })),
    );
  const tasks = run.request.tasks;
  const out = [];
  for (const [i, task] of tasks.entries()) {
    const taskColour = colour(i);
    // Accuracy is drawn in per cent, an error in the task's own unit.
    const mae = overview(task).metric === "mae";
    const shown = (r) => [r.epoch, mae ? r.val_metric : 100 * r.val_metric];
    const mine = rows(run, task).filter((r) => r.event !== "frozen");
    const theirs = previous ? rows(previous, task).filter((r) => r.event !== "frozen") : [];
    const series = [
      { name: "training", colour: taskColour, points: mine.map((r) => [r.epoch, r.train_loss]) },
      { name: "validation", colour: taskColour, dash: "6 3", points: mine.map((r) => [r.epoch, r.val_loss]) },
    ];
    const metric = [{ name: "this run", colour: taskColour, points: mine.map(shown) }];
    if (theirs.length) {
      series.push({ name: "previous: validation", colour: "#777", dash: "2 3", opacity: 0.8, points: theirs.map((r) => [r.epoch, r.val_loss]) });
      metric.push({ name: "previous run", colour: "#777", dash: "2 3", opacity: 0.8, points: theirs.map(shown) });
    }
    const marks = [...freezes(run, task, "red", ""), ...(previous ? freezes(previous, task, "#777", "previous: ") : [])];
    out.push(lineChart(`${task}: loss`, series, marks, "loss"));
    out.push(lineChart(`${task}: validation ${mae ? "MAE" : "accuracy (%)"}`, metric, marks, mae ? "MAE" : "%"));
  }
  const weightSeries = tasks.map((task, i) => ({
    name: task,
    colour: colour(i),
    points: rows(run, task).map((r) => [r.epoch, r.loss_weight]),
  }));
  if (previous) {
    for (const [i, task] of previous.request.tasks.entries()) {
      weightSeries.push({ name: `previous: ${task}`, colour: colour(i), dash: "2 3", opacity: 0.5, points: rows(previous, task).map((r) => [r.epoch, r.loss_weight]) });
    }
  }
  out.push(lineChart("Loss weights", weightSeries, [], "weight"));
  const legend = document.createElement("p");
  legend.className = "small";
  legend.textContent = `This run: ${describe(run)} (solid: training, dashed: validation).${previous ? ` Dotted grey: the previous run, ${describe(previous)}.` : ""}`;
  charts.replaceChildren(legend, ...out);
}
