//! The attributes the multi-task network predicts, and which data set carries which.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// Two classes: 0 male, 1 female (UTKFace's coding; CelebA's `Male` is mapped onto it).
    Gender,
    /// Regression of age / 40 (the thesis normalises CORAL's 0..39 label by 40).
    Age,
    /// Five classes: White, Black, Asian, Indian, Others.
    Race,
    /// Two classes: 0 old, 1 young (CelebA's `Young`).
    Young,
}

pub const RACES: [&str; 5] = ["White", "Black", "Asian", "Indian", "Others"];

impl Task {
    pub fn name(&self) -> &'static str {
        match self {
            Task::Gender => "gender",
            Task::Age => "age",
            Task::Race => "race",
            Task::Young => "young",
        }
    }

    /// Width of the task head's output.
    pub fn outputs(&self) -> usize {
        match self {
            Task::Gender | Task::Young => 2,
            Task::Age => 1,
            Task::Race => RACES.len(),
        }
    }

    pub fn is_regression(&self) -> bool {
        matches!(self, Task::Age)
    }
}

impl std::str::FromStr for Task {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Task::Gender, Task::Age, Task::Race, Task::Young]
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown task `{s}` (gender, age, race or young)"))
    }
}

/// The task set of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskSet {
    /// Gender, age (regression) and race.
    Utkface,
    /// Gender and Young/Old.
    Celeba,
}

impl TaskSet {
    pub fn tasks(&self) -> &'static [Task] {
        match self {
            TaskSet::Utkface => &[Task::Gender, Task::Age, Task::Race],
            TaskSet::Celeba => &[Task::Gender, Task::Young],
        }
    }
}
