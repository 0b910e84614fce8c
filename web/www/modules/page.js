// What every part of the page shares: its elements by id, the app's state, and the two message
// lines (an error, a notice).

export const $ = (id) => document.getElementById(id);

// app: the WebAssembly side. header, tasks: the loaded model's header and its tasks as the page
// shows them (name, metric, test figure); appHeader: the header of the app's own model.
// last, lastName, lastBytes: the latest prediction, its name and its photo. webcam: the webcam's
// run, while it runs. manifest: the deployment's assets in use.
export const state = { app: null, header: null, tasks: [], appHeader: null, last: null, lastName: "", lastBytes: null, webcam: null, manifest: null };

function showLine(id, message) {
  const el = $(id);
  el.textContent = message;
  el.hidden = !message;
}

// A new element with `attributes` and `children`: elements, or values shown as text (never
// parsed as HTML: a task name or a group label from a file stays text).
export function element(tag, attributes = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes)) el.setAttribute(k, v);
  el.append(...children.map((c) => (c instanceof Node ? c : String(c))));
  return el;
}

export const showError = (message) => showLine("error", message);
export const showNotice = (message) => showLine("notice", message);
