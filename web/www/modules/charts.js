// The drawings of the educator panel and the Lab, in SVG: the architecture, line charts of a
// run, the per-group tables; and how a task's figure is written.
import { $, element } from "./page.js";

const SVG = "http://www.w3.org/2000/svg";
// One colour per task, in the model's task order.
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"];
export const colour = (i) => COLOURS[i % COLOURS.length];

// A task's figure as a person reads it: accuracy in per cent, or the mean absolute error in the
// task's own unit. `task` is a task overview from the WebAssembly side ({ name, metric }).
export function figureText(task, value) {
  return task.metric === "mae" ? `${task.name} MAE ${value.toFixed(2)}` : `${task.name} ${(100 * value).toFixed(1)} %`;
}

function svg(width, height) {
  const el = document.createElementNS(SVG, "svg");
  el.setAttribute("viewBox", `0 0 ${width} ${height}`);
  el.setAttribute("width", width);
  el.setAttribute("height", height);
  return el;
}

function add(parent, name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  parent.append(el);
  return el;
}

// The network a model's header describes.
export function drawArchitecture(header) {
  const tasks = header.tasks.map((t) => t.name);
  const width = 800;
  const height = 70 + 60 * tasks.length;
  const s = svg(width, height);
  const box = (x, y, w, h, text, fill) => {
    add(s, "rect", { x, y, width: w, height: h, rx: 6, fill, stroke: "#333" });
    text.split("\n").forEach((line, i) => add(s, "text", { x: x + w / 2, y: y + 18 + 15 * i, "text-anchor": "middle", "font-size": 12 }, line));
  };
  const mid = height / 2;
  box(10, mid - 25, 110, 50, "aligned face\n(detector)", "#eef");
  box(140, mid - 25, 140, 50, `${header.backbone} backbone\n(pretrained)`, "#dde");
  box(300, mid - 25, 150, 50, `shared FC ${header.shared.join("-")}\nLeakyReLU, BatchNorm`, "#cfc");
  tasks.forEach((t, i) => {
    const y = 20 + i * 60;
    box(490, y, 150, 44, `${t} head\nFC ${header.head_hidden}, Dropout, FC`, "#fec");
    add(s, "line", { x1: 450, y1: mid, x2: 490, y2: y + 22, stroke: "#333" });
    add(s, "line", { x1: 640, y1: y + 22, x2: 670, y2: mid, stroke: "#999", "stroke-dasharray": 4 });
  });
  box(670, mid - 25, 120, 50, "Loss Weight\nLayer Σ wᵢLᵢ", "#fcc");
  add(s, "line", { x1: 120, y1: mid, x2: 140, y2: mid, stroke: "#333" });
  add(s, "line", { x1: 280, y1: mid, x2: 300, y2: mid, stroke: "#333" });
  $("architecture").replaceChildren(s);
}

// Series of [epoch, value] points, with vertical marks (a task frozen). A series may set its
// colour, a dash pattern and an opacity (a run overlaid on another).
export function lineChart(title, series, marks, yLabel) {
  const [w, h, l, b] = [360, 220, 46, 30];
  const s = svg(w, h);
  const xs = series.flatMap((p) => p.points.map((q) => q[0]));
  const ys = series.flatMap((p) => p.points.map((q) => q[1])).filter(Number.isFinite);
  const [x1, y0] = [Math.max(1, ...xs), Math.min(0, ...ys)];
  // An empty chart (the run has just started) still has an axis.
  const y1 = ys.length && Math.max(...ys) > y0 ? Math.max(...ys) * 1.05 : y0 + 1;
  const X = (x) => l + ((w - l - 10) * x) / x1;
  const Y = (y) => h - b - ((h - b - 24) * (y - y0)) / (y1 - y0);
  add(s, "text", { x: w / 2, y: 14, "text-anchor": "middle", "font-size": 13 }, title);
  add(s, "line", { x1: l, y1: h - b, x2: w - 10, y2: h - b, stroke: "#333" });
  add(s, "line", { x1: l, y1: 24, x2: l, y2: h - b, stroke: "#333" });
  add(s, "text", { x: w / 2, y: h - 4, "text-anchor": "middle", "font-size": 11 }, "epoch");
  add(s, "text", { x: 4, y: 16, "font-size": 11 }, yLabel);
  for (const v of [y0, (y0 + y1) / 2, y1]) add(s, "text", { x: l - 4, y: Y(v) + 4, "text-anchor": "end", "font-size": 10 }, v.toPrecision(2));
  add(s, "text", { x: X(x1), y: h - b + 14, "text-anchor": "end", "font-size": 10 }, String(x1));
  series.forEach((p, i) => {
    const stroke = p.colour || colour(i);
    const style = { fill: "none", stroke, "stroke-width": 2, "stroke-opacity": p.opacity ?? 1 };
    if (p.dash) style["stroke-dasharray"] = p.dash;
    add(s, "polyline", { points: p.points.map(([x, y]) => `${X(x)},${Y(y)}`).join(" "), ...style });
    add(s, "text", { x: w - 12, y: 30 + 14 * i, "text-anchor": "end", "font-size": 11, fill: stroke, "fill-opacity": p.opacity ?? 1 }, p.name);
  });
  marks.forEach((m, i) => {
    const stroke = m.colour || "red";
    add(s, "line", { x1: X(m.x), y1: 24, x2: X(m.x), y2: h - b, stroke, "stroke-dasharray": 3 });
    // Below the legend, which sits in the same top-right corner.
    add(s, "text", { x: X(m.x) - 3, y: 32 + 14 * (series.length + i), "text-anchor": "end", "font-size": 10, fill: stroke }, m.label);
  });
  return s;
}

// The shipped model's training report: its learned loss weights, each task's validation loss
// with the epoch it was frozen at, and its per-group tables.
export function drawReport(report) {
  const curves = $("curves");
  curves.replaceChildren();
  const tasks = [...new Set(report.rows.map((r) => r.task))];
  const weights = tasks.map((t) => ({ name: t, points: report.rows.filter((r) => r.task === t).map((r) => [r.epoch, r.loss_weight]) }));
  curves.append(lineChart("Learned loss weights", weights, [], "weight"));
  for (const t of tasks) {
    const rows = report.rows.filter((r) => r.task === t && r.event !== "frozen");
    const converged = rows.find((r) => r.event === "converged");
    const marks = converged ? [{ x: converged.epoch, label: `frozen at ${converged.epoch}` }] : [];
    curves.append(lineChart(`${t}: validation loss`, [{ name: "validation", points: rows.map((r) => [r.epoch, r.val_loss]) }], marks, "loss"));
  }
  drawGroups($("groups"), report.groups);
}

// Per-group tables, each with its worst group marked.
export function drawGroups(parent, figures) {
  parent.replaceChildren();
  for (const table of figures.tables) {
    const mae = table.figure === "mae";
    const worst = table.groups.reduce((w, g) => (w === null || (mae ? g.value > w.value : g.value < w.value) ? g : w), null);
    const fmt = (v) => (mae ? v.toFixed(2) : `${(100 * v).toFixed(1)} %`);
    const cells = (tag, ...texts) => texts.map((t) => element(tag, {}, t));
    const rows = table.groups.map((g) => element("tr", g === worst ? { class: "worst" } : {}, ...cells("td", g.label, g.count, fmt(g.value))));
    const caption = element("caption", {}, `${table.title}${worst ? ` (worst: ${worst.label})` : ""}`);
    parent.append(element("table", {}, caption, element("tr", {}, ...cells("th", "group", "faces", mae ? "MAE" : "accuracy")), ...rows));
  }
}
