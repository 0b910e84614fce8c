//! What a network of ours can be: the bounds every way in (a model header, a Lab file, a CSV
//! data set's declarations and data, a run's settings) checks before anything is sized from
//! it. A crafted file could otherwise ask for a layer of 10^8 units, a distribution over 10^9
//! values, or a normalisation that turns every loss into infinity.

use super::{Label, TaskKind, TaskSpec};

/// The widest layer: a shared layer, a head's hidden layer, or a task's outputs.
pub const MAX_WIDTH: usize = 4096;
pub const MAX_SHARED_LAYERS: usize = 4;
pub const MAX_TASKS: usize = 16;
/// The largest value a task's label or normalisation may hold, in the value's own unit.
pub const MAX_VALUE: f64 = 1e6;
/// What `predict` writes beside a model's tasks in each face's line (and the page in each
/// face): a task of that name would hide it.
pub const RESERVED_NAMES: [&str; 9] =
    ["file", "face", "score", "bbox", "keypoints", "error", "answers", "female_probability", "young_probability"];

fn within(value: f64, low: f64, high: f64) -> bool {
    value.is_finite() && (low..=high).contains(&value)
}

impl TaskSpec {
    /// A task a network of ours can have: a name of its own, two or more distinct labels, or a
    /// normalisation and a range under which every value and loss stays a finite number.
    pub fn check(&self) -> Result<(), String> {
        let name = &self.name;
        if name.is_empty() {
            return Err("a task has no name".into());
        }
        if RESERVED_NAMES.contains(&name.as_str()) {
            return Err(format!("a task cannot be called `{name}`: predict writes that field for every face"));
        }
        match &self.kind {
            TaskKind::Class { labels } => check_labels(name, labels),
            TaskKind::Regression { norm } => {
                let (scale, offset) = (f64::from(norm.scale), f64::from(norm.offset));
                if within(scale, 1e-3, MAX_VALUE) && within(offset, -MAX_VALUE, MAX_VALUE) {
                    Ok(())
                } else {
                    Err(format!(
                        "task {name}: its values are normalised as (value - {offset}) / {scale}; the scale must lie \
                         within 0.001..={MAX_VALUE} and the offset within ±{MAX_VALUE} (rescale the values)"
                    ))
                }
            }
            TaskKind::Distribution { low, high, sigma } => {
                let (low, high) = (f64::from(*low), f64::from(*high));
                if within(low, -MAX_VALUE, MAX_VALUE)
                    && within(high - low, 1.0, (MAX_WIDTH - 1) as f64)
                    && within((*sigma).into(), 1e-3, 1e3)
                {
                    Ok(())
                } else {
                    Err(format!(
                        "task {name} as a distribution over {low}..={high} of width {sigma}: at most {MAX_WIDTH} values, \
                         and a width within 0.001..=1000"
                    ))
                }
            }
        }
    }

    /// A label this task can learn from: a class among its labels, a finite value no larger
    /// than [`MAX_VALUE`], or a range of values above such a value; or none.
    pub fn check_label(&self, label: &Label) -> Result<(), String> {
        match (&self.kind, label) {
            (_, Label::Missing) => Ok(()),
            (TaskKind::Class { labels }, Label::Class(c)) if *c < labels.len() => Ok(()),
            (TaskKind::Regression { .. } | TaskKind::Distribution { .. }, Label::Value(v))
                if within((*v).into(), -MAX_VALUE, MAX_VALUE) =>
            {
                Ok(())
            }
            (TaskKind::Regression { .. } | TaskKind::Distribution { .. }, Label::Bounded { low, high })
                if low < high && within((*low).into(), -MAX_VALUE, MAX_VALUE) =>
            {
                Ok(())
            }
            _ => Err(format!("{label:?} is not a label of task {}", self.name)),
        }
    }
}

fn check_labels(name: &str, labels: &[String]) -> Result<(), String> {
    if !(2..=MAX_WIDTH).contains(&labels.len()) {
        return Err(format!("task {name} has {} labels (2 to {MAX_WIDTH})", labels.len()));
    }
    if labels.iter().any(String::is_empty) {
        return Err(format!("task {name} has an empty label"));
    }
    match labels.iter().enumerate().find(|(i, l)| labels[..*i].contains(l)) {
        Some((_, repeated)) => Err(format!("task {name} has the label `{repeated}` twice")),
        None => Ok(()),
    }
}

/// A network's tasks: one to [`MAX_TASKS`], each named once and each [`TaskSpec::check`]ed.
pub fn check_tasks(tasks: &[TaskSpec]) -> Result<(), String> {
    if tasks.is_empty() || tasks.len() > MAX_TASKS {
        return Err(format!("{} tasks (1 to {MAX_TASKS})", tasks.len()));
    }
    if let Some((_, repeated)) = tasks.iter().enumerate().find(|(i, t)| tasks[..*i].iter().any(|o| o.name == t.name)) {
        return Err(format!("the task {} is declared twice", repeated.name));
    }
    tasks.iter().try_for_each(TaskSpec::check)
}

/// Layer widths a network of ours can have: up to [`MAX_SHARED_LAYERS`] shared layers, each 1 to
/// [`MAX_WIDTH`] wide, and a head's hidden layer up to [`MAX_WIDTH`] (0: none).
pub fn check_widths(shared: &[usize], head_hidden: usize) -> Result<(), String> {
    if shared.len() > MAX_SHARED_LAYERS {
        return Err(format!("{} shared layers (at most {MAX_SHARED_LAYERS})", shared.len()));
    }
    if !shared.iter().all(|w| (1..=MAX_WIDTH).contains(w)) {
        return Err(format!("shared layer widths {shared:?} (each 1 to {MAX_WIDTH})"));
    }
    if head_hidden > MAX_WIDTH {
        return Err(format!("head width {head_hidden} (at most {MAX_WIDTH})"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mtl::AgeNorm;

    fn class(name: &str, labels: &[&str]) -> TaskSpec {
        TaskSpec { name: name.into(), kind: TaskKind::Class { labels: labels.iter().map(|l| l.to_string()).collect() } }
    }

    #[test]
    fn the_built_in_tasks_pass() {
        let age = TaskSpec::age(AgeNorm::ALL_AGES);
        let tasks = [TaskSpec::gender(), age.clone(), TaskSpec::race(), TaskSpec::young()];
        assert_eq!(check_tasks(&tasks), Ok(()));
        assert_eq!(age.as_distribution(0.0, 116.0).check(), Ok(()));
    }

    #[test]
    fn names_that_hide_an_output_field_empty_names_and_repeats_are_refused() {
        for name in RESERVED_NAMES.iter().chain(&[""]) {
            assert!(class(name, &["a", "b"]).check().is_err(), "{name}");
        }
        assert!(class("x", &["male", "male"]).check().unwrap_err().contains("twice"));
        assert!(class("x", &["a", ""]).check().is_err());
        assert!(class("x", &["a"]).check().is_err());
        let twice = [TaskSpec::age(AgeNorm::ALL_AGES), TaskSpec::age(AgeNorm::CORAL)];
        assert!(check_tasks(&twice).unwrap_err().contains("declared twice"));
        assert!(check_tasks(&[]).is_err());
        assert!(check_tasks(&vec![TaskSpec::gender(); MAX_TASKS + 1]).is_err());
    }

    #[test]
    fn normalisations_and_ranges_that_would_not_stay_finite_are_refused() {
        let regression = |offset, scale| TaskSpec {
            name: "v".into(),
            kind: TaskKind::Regression { norm: AgeNorm { offset, scale } },
        };
        for (offset, scale) in [(0.0, 0.0), (0.0, 1e-4), (0.0, 1e7), (1e7, 1.0), (0.0, f32::NAN), (f32::INFINITY, 1.0)]
        {
            assert!(regression(offset, scale).check().is_err(), "{offset} {scale}");
        }
        let age = TaskSpec::age(AgeNorm::ALL_AGES);
        for (low, high) in [(0.0, 1e9), (0.0, 3e38), (5.0, 5.0), (0.0, f32::NAN)] {
            assert!(age.as_distribution(low, high).check().is_err(), "{low}..={high}");
        }
        let flat = TaskSpec { kind: TaskKind::Distribution { low: 0.0, high: 100.0, sigma: 0.0 }, ..age.clone() };
        assert!(flat.check().is_err());
        assert!(age.check_label(&Label::Value(3e38)).is_err());
        assert!(age.check_label(&Label::Value(f32::NAN)).is_err());
        assert!(age.check_label(&Label::Value(37.0)).is_ok());
        assert!(TaskSpec::gender().check_label(&Label::Class(2)).is_err());
        assert!(TaskSpec::gender().check_label(&Label::Value(1.0)).is_err());
    }

    #[test]
    fn layer_widths_are_bounded() {
        assert_eq!(check_widths(&[512], 128), Ok(()));
        assert!(check_widths(&[200_000_000], 128).is_err());
        assert_eq!(check_widths(&[512], 0), Ok(()), "a head without a hidden layer");
        assert!(check_widths(&[512], MAX_WIDTH + 1).is_err());
        assert!(check_widths(&[512; MAX_SHARED_LAYERS + 1], 128).is_err());
        assert!(check_widths(&[0], 128).is_err());
    }
}
