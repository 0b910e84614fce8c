//! A user's own labelled faces: a CSV file with a header row, a column `image` (the photo's
//! path, relative to the CSV's folder or absolute), one column per declared task holding its
//! label (a class label's name, or a number for a regression), and optionally a column `split`
//! (`train`, `val` or `test`; without it the faces are split 80/10/10 with the split seed). An
//! empty cell means "no label" for that task: the face trains and is measured on its other tasks.
//!
//! Tasks are declared as `name:class:label,label,...` or `name:regression`; a regression is
//! normalised by its training values' mean and standard deviation. Rows that are malformed, or
//! whose image is missing, are skipped and counted with their reason, never fatal. What no
//! network of ours could train on (a task declared twice, a name `predict` writes for every
//! face, values whose normalisation `export` would refuse) is refused when the data are loaded,
//! not after training.

use std::path::Path;

use anyhow::{Context, Result, bail};
use facemtl::mtl::{AgeNorm, TaskKind, TaskSpec, check_tasks};

use super::{DataSet, DataSetId, Label, Sample, Skipped, split3};
use crate::files::read_bounded;

/// The largest CSV file read: about five million rows.
const MAX_CSV_BYTES: usize = 256 << 20;

/// The usable rows (each with the split it asks for, if any) and the rows skipped.
type Rows = (Vec<(Sample, Option<Split>)>, Vec<Skipped>);

/// Which split a row asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Split {
    Train,
    Val,
    Test,
}

pub fn load(path: &Path, declarations: &[String], seed: u64) -> Result<DataSet> {
    if declarations.is_empty() {
        bail!("a CSV data set needs its tasks: --task NAME:class:LABEL,LABEL,... or --task NAME:regression");
    }
    // The normalisation of a regression is set once the training values are known.
    let tasks: Vec<TaskSpec> = declarations
        .iter()
        .map(|d| TaskSpec::parse(d, AgeNorm::ALL_AGES))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    check_tasks(&tasks).map_err(anyhow::Error::msg)?;
    let bytes = read_bounded(path, MAX_CSV_BYTES)?;
    let text = String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))?;
    let folder = path.parent().unwrap_or(Path::new("."));
    let name = path.file_stem().map_or("csv".into(), |s| s.to_string_lossy().into_owned());
    let (rows, skipped) = parse(&text, &tasks, |image| folder.join(image))?;
    let mut set = DataSet {
        id: DataSetId::Csv,
        description: format!("{} ({} faces)", path.file_name().unwrap_or_default().to_string_lossy(), rows.len()),
        name,
        tasks,
        train: Vec::new(),
        val: Vec::new(),
        test: Vec::new(),
        skipped,
    };
    let (assigned, free): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(_, split)| split.is_some());
    let (train, val, test) = split3(free.into_iter().map(|(s, _)| s).collect(), seed, 0.8, 0.1);
    (set.train, set.val, set.test) = (train, val, test);
    for (sample, split) in assigned {
        match split {
            Some(Split::Train) => set.train.push(sample),
            Some(Split::Val) => set.val.push(sample),
            _ => set.test.push(sample),
        }
    }
    if set.train.len() < 2 || set.val.is_empty() {
        let skipped = set.skipped_summary().map(|s| format!("; {s}")).unwrap_or_default();
        bail!(
            "{}: {} training and {} validation faces are too few to train on{skipped}",
            path.display(),
            set.train.len(),
            set.val.len()
        );
    }
    for (column, task) in set.tasks.iter_mut().enumerate() {
        if set.train.iter().all(|s| s.labels[column] == Label::Missing) {
            bail!("{}: no training face has a {} label", path.display(), task.name);
        }
        if let TaskKind::Regression { norm } = &mut task.kind {
            *norm = normalisation(set.train.iter().filter_map(|s| s.value(column)));
            task.check().map_err(|why| anyhow::anyhow!("{}: {why}", path.display()))?;
        }
    }
    Ok(set)
}

/// Mean and standard deviation of the training values (a scale of 1 when they are all equal).
fn normalisation(values: impl Iterator<Item = f32>) -> AgeNorm {
    let values: Vec<f64> = values.map(f64::from).collect();
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    AgeNorm { offset: mean as f32, scale: if std > 1e-6 { std as f32 } else { 1.0 } }
}

/// The rows of a CSV text as samples (with the split they ask for) and the rows skipped.
/// `resolve` turns the `image` column into the photo's path; a missing photo skips its row.
fn parse(text: &str, tasks: &[TaskSpec], resolve: impl Fn(&str) -> std::path::PathBuf) -> Result<Rows> {
    let mut reader = ::csv::ReaderBuilder::new().flexible(true).trim(::csv::Trim::All).from_reader(text.as_bytes());
    let header = reader.headers().context("the CSV has no header row")?.clone();
    let column = |name: &str| header.iter().position(|h| h == name);
    let image = column("image").context("the CSV has no `image` column")?;
    let split = column("split");
    let columns: Vec<usize> = tasks
        .iter()
        .map(|t| {
            column(&t.name).with_context(|| format!("the CSV has no `{}` column for the task of that name", t.name))
        })
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let entry = format!("row {}", i + 2);
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                skipped.push(Skipped::new(&entry, format!("unreadable: {e}")));
                continue;
            }
        };
        match row(&record, image, split, tasks, &columns) {
            Err(reason) => skipped.push(Skipped::new(&entry, reason)),
            Ok((relative, labels, split)) => {
                let file = resolve(relative);
                match photo_key(&file) {
                    Some(key) => rows.push((Sample { file, key, labels }, split)),
                    None => skipped.push(Skipped::new(relative, "image missing")),
                }
            }
        }
    }
    Ok((rows, skipped))
}

/// What keys a photo's cached features: its resolved path, size and modification time, so that
/// two CSV files of one name listing `photos/0.jpg` in two folders, or a photo replaced in
/// place, never share features. None when the photo is not a readable file.
fn photo_key(file: &Path) -> Option<String> {
    let resolved = file.canonicalize().ok()?;
    let meta = std::fs::metadata(&resolved).ok().filter(|m| m.is_file())?;
    let modified = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
    Some(format!("csv:{}:{}:{modified}", resolved.display(), meta.len()))
}

/// One record's image path, labels and split, or why it is unusable.
fn row<'a>(
    record: &'a ::csv::StringRecord,
    image: usize,
    split: Option<usize>,
    tasks: &[TaskSpec],
    columns: &[usize],
) -> Result<(&'a str, Vec<Label>, Option<Split>), String> {
    let field = |i: usize| record.get(i).filter(|f| !f.is_empty());
    let path = field(image).ok_or("no image path")?;
    let labels: Vec<Label> = tasks
        .iter()
        .zip(columns)
        .map(|(task, &c)| {
            // An empty cell is no label for the task; a row too short to have the cell is broken.
            let value = match record.get(c) {
                None => return Err(format!("no {} label", task.name)),
                Some("") => return Ok(Label::Missing),
                Some(value) => value,
            };
            match &task.kind {
                TaskKind::Class { labels } => labels
                    .iter()
                    .position(|l| l == value)
                    .map(Label::Class)
                    .ok_or_else(|| format!("{} label `{value}` is not one of {}", task.name, labels.join(", "))),
                TaskKind::Regression { .. } | TaskKind::Distribution { .. } => value
                    .parse::<f32>()
                    .ok()
                    .map(Label::Value)
                    .filter(|label| task.check_label(label).is_ok())
                    .ok_or_else(|| format!("{} value `{value}` is not a number within ±1e6", task.name)),
            }
        })
        .collect::<Result<_, _>>()?;
    if labels.iter().all(|l| *l == Label::Missing) {
        return Err("no label for any task".into());
    }
    let split = match split.and_then(field) {
        None => None,
        Some("train") => Some(Split::Train),
        Some("val") => Some(Split::Val),
        Some("test") => Some(Split::Test),
        Some(other) => return Err(format!("split `{other}` is not train, val or test")),
    };
    Ok((path, labels, split))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_samples_or_are_skipped_with_their_reason() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("csv");
        std::fs::create_dir_all(dir.join("faces")).unwrap();
        for i in 0..12 {
            std::fs::write(dir.join(format!("faces/{i}.jpg")), b"").unwrap();
        }
        let mut text = String::from("image,band,weight,split\n");
        for i in 0..12 {
            let split = ["train", "train", "train", "val", ""][i % 5];
            text.push_str(&format!("faces/{i}.jpg,{},{},{split}\n", ["child", "adult"][i % 2], 50 + i));
        }
        text.push_str("faces/missing.jpg,adult,60,\n");
        text.push_str("faces/1.jpg,elder,60,\n");
        text.push_str("faces/2.jpg,adult,heavy,\n");
        text.push_str("faces/3.jpg,adult,60,later\n");
        text.push_str("faces/5.jpg,,,\n");
        text.push_str("faces/6.jpg,,61,test\n");
        text.push_str(",adult,60,\n");
        text.push_str("\"faces/4.jpg\",adult\n");
        let csv = dir.join("mine.csv");
        std::fs::write(&csv, &text).unwrap();
        let tasks = vec!["band:class:child,adult".to_string(), "weight:regression".to_string()];
        let set = load(&csv, &tasks, 7).unwrap();
        assert_eq!(set.all().count(), 13);
        assert_eq!(set.skipped.len(), 7, "{:?}", set.skipped);
        assert!(set.skipped.iter().any(|s| s.reason == "no label for any task"), "{:?}", set.skipped);
        // An empty cell: a face without a band, with its weight.
        let unbanded = set.test.iter().find(|s| s.labels[0] == Label::Missing).expect("the face without a band");
        assert_eq!(unbanded.value(1), Some(61.0));
        assert_eq!(set.skipped[0].reason, "image missing");
        assert!(set.skipped[1].reason.contains("elder") && set.skipped[2].reason.contains("heavy"));
        for s in &set.val {
            assert!(s.key.contains(&s.file.canonicalize().unwrap().display().to_string()), "{}", s.key);
        }
        let TaskKind::Regression { norm } = set.tasks[1].kind else { panic!() };
        let train: Vec<f32> = set.train.iter().map(|s| s.value(1).unwrap()).collect();
        let mean = train.iter().sum::<f32>() / train.len() as f32;
        assert!((norm.offset - mean).abs() < 1e-4 && norm.scale > 1.0);
        assert!(load(&csv, &["band:class:a,b".to_string()], 7).unwrap_err().to_string().contains("too few"));
        assert!(load(&csv, &["size:regression".to_string()], 7).unwrap_err().to_string().contains("`size` column"));
    }

    /// `rows` (image, label) in `dir/faces.csv`, each photo written with `photo(i)`'s bytes.
    fn csv_in(
        dir: &Path,
        column: &str,
        rows: &[(String, String)],
        photo: impl Fn(usize) -> Vec<u8>,
    ) -> std::path::PathBuf {
        std::fs::create_dir_all(dir.join("photos")).unwrap();
        let mut text = format!("image,{column}\n");
        for (i, (image, label)) in rows.iter().enumerate() {
            if image.starts_with("photos/") {
                std::fs::write(dir.join(image), photo(i)).unwrap();
            }
            text.push_str(&format!("{image},{label}\n"));
        }
        std::fs::write(dir.join("faces.csv"), text).unwrap();
        dir.join("faces.csv")
    }

    fn rows(n: usize, label: impl Fn(usize) -> String) -> Vec<(String, String)> {
        (0..n).map(|i| (format!("photos/{i}.jpg"), label(i))).collect()
    }

    #[test]
    fn two_folders_with_the_same_names_but_other_photos_share_no_cache_key() {
        let temp = tempfile::tempdir().unwrap();
        let band = |i: usize| ["child", "adult"][i % 2].to_string();
        let first = csv_in(&temp.path().join("a"), "band", &rows(20, band), |i| vec![1, i as u8]);
        let second = csv_in(&temp.path().join("b"), "band", &rows(20, band), |i| vec![2, i as u8, 0]);
        let tasks = ["band:class:child,adult".to_string()];
        let keys = |csv: &Path| load(csv, &tasks, 7).unwrap().all().map(|s| s.key.clone()).collect::<Vec<_>>();
        let (a, b) = (keys(&first), keys(&second));
        assert_eq!(a.len(), 20);
        assert!(a.iter().all(|k| !b.contains(k)), "{a:?} against {b:?}");
    }

    #[test]
    fn what_no_network_could_train_on_is_refused_when_loaded() {
        let temp = tempfile::tempdir().unwrap();
        let value = |scale: f64| move |i: usize| format!("{}", scale * (1.0 + (i % 5) as f64));
        let csv = csv_in(temp.path(), "v", &rows(20, value(1.0)), |_| vec![0]);
        let err = |tasks: &[&str], csv: &Path| {
            let tasks: Vec<String> = tasks.iter().map(|t| t.to_string()).collect();
            load(csv, &tasks, 7).unwrap_err().to_string()
        };
        assert!(err(&["score:regression"], &csv).contains("cannot be called `score`"));
        assert!(err(&["v:regression", "v:regression"], &csv).contains("declared twice"));
        assert!(load(&csv, &["v:regression".to_string()], 7).is_ok());
        // Values about 0.0001 apart: a scale export would refuse, refused before training.
        let tiny = csv_in(&temp.path().join("tiny"), "v", &rows(20, value(1e-4)), |_| vec![0]);
        assert!(err(&["v:regression"], &tiny).contains("rescale the values"));
        // A value beyond what any normalisation keeps finite skips its row.
        let huge = csv_in(
            &temp.path().join("huge"),
            "v",
            &rows(20, |i| if i == 3 { "3e38".into() } else { "1".into() }),
            |_| vec![0],
        );
        let set = load(&huge, &["v:regression".to_string()], 7).unwrap();
        assert_eq!(set.skipped.len(), 1);
        assert!(set.skipped[0].reason.contains("within ±1e6"));
    }

    #[test]
    fn when_nothing_loads_the_error_says_why_and_examples_are_cut_short() {
        let temp = tempfile::tempdir().unwrap();
        let long = format!("missing/{}.jpg", "x".repeat(1 << 20));
        let mut all = vec![(long, "adult".to_string())];
        all.extend((0..1000).map(|i| (format!("missing/{i}.jpg"), "adult".to_string())));
        let csv = csv_in(temp.path(), "band", &all, |_| vec![0]);
        let err = load(&csv, &["band:class:child,adult".to_string()], 7).unwrap_err().to_string();
        assert!(err.contains("too few to train on; skipped 1001 entries (1001 image missing)"), "{err}");
        assert!(err.len() < 1000 && err.contains("bytes in all"), "the 1 MB path is cut short: {err}");
    }
}
