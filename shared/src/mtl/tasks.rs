//! What the multi-task network predicts: one [`TaskSpec`] per task, the one place that says
//! what a task is (its name, whether it classifies or regresses, its labels or normalisation,
//! hence its head's width, its loss and its metric). The built-in data sets' tasks are
//! constructors here; a user's data set declares its own (`name:class:a,b` or
//! `name:regression`).

use serde::{Deserialize, Serialize};

pub const RACES: [&str; 5] = ["White", "Black", "Asian", "Indian", "Others"];

/// How a regression target is put on the network's scale: `target = (value - offset) / scale`,
/// and a prediction read back as `output * scale + offset` (years, for age).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AgeNorm {
    pub offset: f32,
    pub scale: f32,
}

impl AgeNorm {
    /// All ages: age / 40.
    pub const ALL_AGES: AgeNorm = AgeNorm { offset: 0.0, scale: 40.0 };
    /// The CORAL protocol (ages 21-60), as the thesis: (age - 21) / 40.
    pub const CORAL: AgeNorm = AgeNorm { offset: 21.0, scale: 40.0 };

    pub fn normalise(&self, value: f32) -> f32 {
        (value - self.offset) / self.scale
    }

    pub fn value(&self, output: f32) -> f32 {
        output * self.scale + self.offset
    }
}

/// A classification over named labels, or a value: regressed, or predicted as a distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    Class {
        labels: Vec<String>,
    },
    Regression {
        norm: AgeNorm,
    },
    /// A value predicted as a distribution over the whole units `low..=high` (an age in
    /// years), trained on a Gaussian label distribution of width `sigma` around the true value
    /// and read as its expectation (DLDL-v2, Gao et al. 2018). A regression trained on squared
    /// error pulls uncertain faces towards the mean age; a distribution can stay wide, and its
    /// expectation follows the evidence.
    Distribution {
        low: f32,
        high: f32,
        sigma: f32,
    },
}

/// The label distribution's width, in years (DLDL-v2 uses 2).
pub const AGE_SIGMA: f32 = 2.0;

/// How a task's predictions are scored on a split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Share of faces with the right class (higher is better).
    Accuracy,
    /// Mean absolute error in the value's own unit (lower is better).
    Mae,
}

/// What a page shows of a task without knowing it: its name, how it is measured, and the
/// model's figure on its test set where there is one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskOverview {
    pub name: String,
    pub metric: Metric,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub name: String,
    pub kind: TaskKind,
}

fn class(name: &str, labels: &[&str]) -> TaskSpec {
    TaskSpec { name: name.into(), kind: TaskKind::Class { labels: labels.iter().map(|l| l.to_string()).collect() } }
}

impl TaskSpec {
    /// UTKFace's coding (0 male, 1 female); CelebA's `Male` is mapped onto it.
    pub fn gender() -> Self {
        class("gender", &["male", "female"])
    }

    pub fn race() -> Self {
        class("race", &RACES)
    }

    /// CelebA's `Young` (0 old, 1 young).
    pub fn young() -> Self {
        class("young", &["old", "young"])
    }

    pub fn age(norm: AgeNorm) -> Self {
        TaskSpec { name: "age".into(), kind: TaskKind::Regression { norm } }
    }

    /// This value's task predicted as a distribution over `low..=high` instead.
    pub fn as_distribution(&self, low: f32, high: f32) -> Self {
        TaskSpec { name: self.name.clone(), kind: TaskKind::Distribution { low, high, sigma: AGE_SIGMA } }
    }

    /// Width of the task head's output.
    pub fn outputs(&self) -> usize {
        match &self.kind {
            TaskKind::Class { labels } => labels.len(),
            TaskKind::Regression { .. } => 1,
            TaskKind::Distribution { .. } => self.bins().len(),
        }
    }

    /// A distribution's values, one per output: `low, low + 1, ..., high`; empty otherwise.
    pub fn bins(&self) -> Vec<f32> {
        match self.kind {
            TaskKind::Distribution { low, high, .. } => {
                (0..=(high - low).round().max(0.0) as usize).map(|i| low + i as f32).collect()
            }
            _ => Vec::new(),
        }
    }

    pub fn metric(&self) -> Metric {
        match self.kind {
            TaskKind::Class { .. } => Metric::Accuracy,
            TaskKind::Regression { .. } | TaskKind::Distribution { .. } => Metric::Mae,
        }
    }

    pub fn is_regression(&self) -> bool {
        self.metric() == Metric::Mae
    }

    pub fn labels(&self) -> &[String] {
        match &self.kind {
            TaskKind::Class { labels } => labels,
            TaskKind::Regression { .. } | TaskKind::Distribution { .. } => &[],
        }
    }

    /// This task as a page shows it, with its `test` figure.
    pub fn overview(&self, test: Option<f64>) -> TaskOverview {
        TaskOverview { name: self.name.clone(), metric: self.metric(), test }
    }

    /// The name of the task's test figure in a model header (`age_mae`, `gender_accuracy`).
    pub fn metric_name(&self) -> String {
        match self.metric() {
            Metric::Accuracy => format!("{}_accuracy", self.name),
            Metric::Mae => format!("{}_mae", self.name),
        }
    }

    /// A task as a user declares it: `name:class:label,label,...` or `name:regression` (the
    /// normalisation then comes from the training data, see [`AgeNorm`]).
    pub fn parse(declaration: &str, norm: AgeNorm) -> Result<Self, String> {
        let mut parts = declaration.splitn(3, ':');
        let name = parts.next().unwrap_or_default().trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(format!("`{declaration}`: a task name is letters, digits, `_` or `-`"));
        }
        let kind = match (parts.next().map(str::trim), parts.next()) {
            (Some("class"), Some(labels)) => {
                TaskKind::Class { labels: labels.split(',').map(|l| l.trim().to_string()).collect() }
            }
            (Some("regression"), None) => TaskKind::Regression { norm },
            _ => {
                return Err(format!("`{declaration}`: expected `{name}:class:LABEL,LABEL,...` or `{name}:regression`"));
            }
        };
        let task = TaskSpec { name: name.into(), kind };
        task.check().map_err(|why| format!("`{declaration}`: {why}"))?;
        Ok(task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_parse_into_tasks_or_say_what_is_wrong() {
        assert_eq!(TaskSpec::parse("gender:class:male,female", AgeNorm::ALL_AGES), Ok(TaskSpec::gender()));
        let band = TaskSpec::parse("band:class:child, adult ,senior", AgeNorm::ALL_AGES).unwrap();
        assert_eq!((band.outputs(), band.metric()), (3, Metric::Accuracy));
        assert_eq!(band.labels()[1], "adult");
        assert_eq!(TaskSpec::parse("age:regression", AgeNorm::CORAL), Ok(TaskSpec::age(AgeNorm::CORAL)));
        for bad in [
            "",
            "x",
            "x:class",
            "x:class:one",
            "x:class:a,,b",
            "x:class:a,a",
            "x:regress",
            "bad name:regression",
            "score:regression",
            "bbox:class:a,b",
            "file:class:a,b",
        ] {
            assert!(TaskSpec::parse(bad, AgeNorm::ALL_AGES).is_err(), "{bad}");
        }
        assert_eq!(AgeNorm::CORAL.value(AgeNorm::CORAL.normalise(37.0)), 37.0);
        assert_eq!(TaskSpec::age(AgeNorm::CORAL).metric_name(), "age_mae");
    }
}

/// A face's label for one task.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Label {
    /// The index of its class among the task's labels.
    Class(usize),
    /// The value in its own unit (years for age), before normalisation.
    Value(f32),
    /// A value known only to lie in `low..high` (its own unit; `high` may be infinite): a
    /// CelebA face's age, bounded by its Young label when the sets are trained together. Its
    /// loss asks the prediction to lie in the range; metrics leave the face out.
    Bounded { low: f32, high: f32 },
    /// No label for this task: a face of a data set without it (two trained at once), or an
    /// empty CSV cell. Its loss and metrics leave the face out.
    Missing,
}
