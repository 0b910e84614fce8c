//! The Lab: the multi-task head trained in the browser (in a Web Worker) on the Lab file's
//! features, with the native trainer's own session (`facemtl::training::Session`): the same
//! settings, epochs, Early Freeze and loss weightings, on the CPU backend or WebGPU.

use std::cell::RefCell;
use std::rc::Rc;

use burn::prelude::*;
use facemtl::groups::{self, GroupFigures};
use facemtl::lab::{self, LabData, LabRun, RunRequest};
use facemtl::model_file::{self, Header};
use facemtl::mtl::TaskOverview;
use facemtl::training::{EpochReport, Evaluation, RunSettings, evaluate};
use js_sys::{Promise, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::{js_error, to_js};

/// The Lab's data on one device, and the run in progress.
#[wasm_bindgen]
pub struct Lab {
    device: Device,
    backend: String,
    data: LabData,
    /// Taken out while an epoch computes, so that no borrow is held across a read-back.
    run: Rc<RefCell<Option<LabRun>>>,
}

#[derive(Serialize)]
struct Info<'a> {
    backend: &'a str,
    header: &'a lab::LabHeader,
    defaults: RunSettings,
    /// Every set's tasks as the page shows them, once each.
    tasks: Vec<TaskOverview>,
}

/// One epoch's report, its time, and the faces it trained on.
#[derive(Serialize)]
struct Epoch {
    report: EpochReport,
    seconds: f64,
    faces: usize,
}

#[derive(Serialize)]
struct Finished {
    val: Evaluation,
    test: Evaluation,
    groups: GroupFigures,
}

#[wasm_bindgen]
impl Lab {
    /// The Lab on WebGPU when the browser offers it (unless `force` is "cpu"), else the CPU,
    /// over the Lab file's `bytes`.
    pub async fn create(force: Option<String>, bytes: Vec<u8>) -> Result<Lab, JsError> {
        let data = lab::decode(&bytes).map_err(js_error)?;
        let (device, backend) = crate::pick_device(force.as_deref()).await?;
        Ok(Lab { device, backend, data, run: Rc::default() })
    }

    /// The backend, the Lab file's header (sets, tasks, licence) and the controls' starting
    /// settings, and the tasks' metrics.
    pub fn info(&self) -> Result<JsValue, JsError> {
        let mut tasks: Vec<TaskOverview> = Vec::new();
        for task in self.data.header.sets.iter().flat_map(|s| &s.tasks) {
            if !tasks.iter().any(|t| t.name == task.name) {
                tasks.push(task.overview(None));
            }
        }
        to_js(&Info { backend: &self.backend, header: &self.data.header, defaults: lab::demo_settings(), tasks })
    }

    /// Start a run: `request` is `{ set, tasks: [names], settings }` (settings as the native
    /// trainer's). A run in progress is dropped.
    pub fn start(&self, request: JsValue) -> Result<(), JsError> {
        let request: RunRequest = from_js(&request)?;
        let run = LabRun::new(&self.data, request, &self.device).map_err(js_error)?;
        self.run.replace(Some(run));
        Ok(())
    }

    /// Drop the run.
    pub fn reset(&self) {
        self.run.replace(None);
    }

    /// Whether the run has ended (every epoch run, or every task converged); true without one.
    pub fn finished(&self) -> bool {
        self.run.borrow().as_ref().is_none_or(|r| r.session.is_finished())
    }

    /// One epoch: a promise of its report (per-task rows, Early Freeze's events), its time and
    /// the faces it trained on.
    pub fn step(&self) -> Promise {
        let cell = self.run.clone();
        future_to_promise(async move {
            let mut run = cell.take().ok_or_else(|| js_error("no run: press Train"))?;
            let started = crate::now();
            let report = run.epoch().await;
            let seconds = (crate::now() - started) / 1000.0;
            let faces = run.faces;
            // A diverged run stays in place (it says so when asked for its network); the page
            // says why it stopped.
            cell.replace(Some(run));
            Ok(to_js(&Epoch { report: report.map_err(js_error)?, seconds, faces })?)
        })
    }

    /// The run's network on validation and test, with the test faces' group tables.
    pub fn results(&self) -> Promise {
        let cell = self.run.clone();
        future_to_promise(async move {
            let run = cell.take().ok_or_else(|| js_error("no run"))?;
            if let Err(why) = run.usable() {
                cell.replace(Some(run));
                return Err(js_error(why).into());
            }
            let valid = run.session.model.valid();
            let tasks = &run.session.tasks;
            let val = evaluate(&valid.head, None, &run.val, tasks).await;
            let test = evaluate(&valid.head, None, &run.test, tasks).await;
            let groups = groups::compute(&run.set_tasks, tasks, &run.test_labels, &test.predictions);
            cell.replace(Some(run));
            let finished = Finished { val, test, groups };
            Ok(to_js(&finished)?)
        })
    }

    /// The run's network as a model file (what `facemtl predict` and the app load), its test
    /// figures measured on the Lab's test faces as the file stores the network.
    pub fn model_file(&self) -> Promise {
        let cell = self.run.clone();
        let (backbone, backbone_weights) = (self.data.header.backbone, self.data.header.backbone_weights);
        let description =
            |name: &str| self.data.set(name).map(|s| s.info.description.clone()).unwrap_or_else(|| name.to_string());
        let trained_on = cell
            .borrow()
            .as_ref()
            .map(|r| format!("{}: the Lab's {} training faces, trained in the browser", description(&r.set), r.faces));
        future_to_promise(async move {
            let run = cell.take().ok_or_else(|| js_error("no run"))?;
            let head = run.head().await;
            let result = async {
                run.usable()?;
                let head = head?;
                let tasks = run.session.tasks.clone();
                let evaluation = evaluate(&head, None, &run.test_on_host, &tasks).await;
                let metrics = tasks.iter().zip(&evaluation.metrics).map(|(t, m)| (t.metric_name(), *m)).collect();
                let header = Header::for_head(
                    backbone,
                    backbone_weights,
                    tasks,
                    run.session.settings.widths(),
                    trained_on.unwrap_or_default(),
                    metrics,
                );
                model_file::export(head, None, header).map_err(|e| e.to_string())
            }
            .await;
            cell.replace(Some(run));
            let bytes = result.map_err(js_error)?;
            Ok(Uint8Array::from(bytes.as_slice()).into())
        })
    }
}

/// A value the page sent, read as `T`.
fn from_js<T: serde::de::DeserializeOwned>(value: &JsValue) -> Result<T, JsError> {
    let text = js_sys::JSON::stringify(value).map_err(|_| js_error("the message is not plain data"))?;
    serde_json::from_str(&String::from(text)).map_err(js_error)
}
