// The model the app predicts with: its networks downloaded and loaded, swapped for a newer
// deployment's, or for a model of the visitor's (a file, or one trained in the Lab). The page
// describes a model from what its header says, and from its tasks as the WebAssembly side
// gives them (name, metric, test figure).
import { MODEL, NETWORKS, WEIGHTS, download } from "./assets.js";
import { drawArchitecture, figureText } from "./charts.js";
import { $, element, showError, showNotice, state } from "./page.js";

function describeModel(header, tasks) {
  const figures = tasks.filter((t) => t.test !== undefined).map((t) => figureText(t, t.test));
  const names = tasks.map((t) => t.name).join(", ");
  const mirror = header.test_time_mirror ? " Each face is read with its mirror image (test-time mirror)." : "";
  const blocks = header.tuned_blocks > 1 ? `last ${header.tuned_blocks} backbone blocks were` : "last backbone block was";
  const tuned = header.tuned_blocks ? ` Its ${blocks} fine-tuned with it.` : "";
  $("model-info").textContent = `Model: ${header.backbone} backbone, tasks ${names}; trained on ${header.trained_on}; test: ${figures.join(", ")}.${mirror}${tuned}`;
}

// Loading refuses a file whose format version or payload sha256 does not hold.
function useModel(bytes) {
  const { header, tasks } = state.app.load_model(bytes);
  state.header = header;
  state.tasks = tasks;
  describeModel(header, tasks);
  drawArchitecture(header);
}

// The networks of `manifest` (only the paths in `only`, when given) into the app.
export async function loadNetworks(manifest, only = null) {
  const wanted = (path) => !only || only.includes(path);
  const [detector, backbone, model] = await Promise.all([
    wanted(WEIGHTS.detector) && download(manifest, WEIGHTS.detector, "face detector"),
    wanted(WEIGHTS.faceres) && download(manifest, WEIGHTS.faceres, "face backbone"),
    wanted(MODEL) && download(manifest, MODEL, "multi-task model"),
  ]);
  if (detector) state.app.load_detector(detector);
  if (backbone) state.app.load_backbone("faceres", backbone);
  // A model is built around the detector and backbone loaded before it.
  useModel(model || (await download(manifest, MODEL, "multi-task model")));
  state.appHeader = state.header;
}

// After a redeploy: the networks whose files changed, downloaded and swapped in.
export async function updateFrom(manifest) {
  const changed = NETWORKS.filter((path) => manifest[path] !== state.manifest[path]);
  const old = state.manifest;
  state.manifest = manifest;
  if (!changed.length) return;
  try {
    await loadNetworks(manifest, changed);
    showNotice("A newer version of the model was deployed: it is used from now on.");
  } catch (e) {
    state.manifest = old;
    showError(`A newer model could not be loaded (${e.message || e}); the one kept from your last visit is used.`);
  }
}

// Switch the app to the model in `bytes`; a refused file leaves the previous model loaded.
export function loadUserModel(bytes, name) {
  try {
    useModel(bytes);
    showError("");
    // The app computes with the backbone weights of its own model (int8 for the shipped
    // one); a model measured with others still runs, with slightly different answers.
    const weights = (header) => header.backbone_weights || "exact";
    showNotice(
      weights(state.header) === weights(state.appHeader)
        ? ""
        : `${name} was measured with the ${weights(state.header)} backbone weights; this page runs the ${weights(state.appHeader)} ones, so its answers may differ slightly from \`facemtl predict\`.`,
    );
    for (const id of ["curves", "groups"]) $(id).replaceChildren(element("p", {}, "No training report for this model."));
    return true;
  } catch (err) {
    showError(`${name} was refused: ${err.message || err}. The previous model stays loaded.`);
    return false;
  }
}
