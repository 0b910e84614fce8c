//! CelebA: `list_attr_celeba.txt` (count line, attribute names, then `file +1/-1 ...` rows with
//! CRLF ends) and `list_eval_partition.txt`. The subset here lies wholly in the official train
//! partition, so a seeded 80/10/10 split of the images present is used, and every figure on it
//! says it is not the official test.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use facemtl::mtl::TaskSpec;

use super::{DataSet, DataSetId, Label, Sample, Skipped, split3};

/// CelebA's "Young" states no age; it is read as under this many years, the reading most papers
/// use. It scores a model's age against Young, and bounds CelebA faces' ages when the sets are
/// trained together.
pub const YOUNG_BELOW: f32 = 30.0;

pub const CAVEAT: &str = "CelebA subset: 10,000 images at 89x109 (half resolution), all from the official train \
                          partition; split 80/10/10 with a fixed seed. Not comparable with the official test set.";

pub fn load(data_dir: &Path, seed: u64) -> Result<DataSet> {
    let root = data_dir.join("celeba");
    let images = root.join("img_align_celeba_89x109");
    let path = root.join("list_attr_celeba.txt");
    let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let partition_path = root.join("list_eval_partition.txt");
    let partition = fs::read_to_string(&partition_path)
        .with_context(|| format!("cannot read {}", partition_path.display()))
        .map(|text| parse_partition(&text))?;
    let (present, skipped) = parse_attributes(&text, &images, |f| images.join(f).is_file(), &partition)
        .with_context(|| format!("reading {}", path.display()))?;
    let mut set = DataSet::built_in(DataSetId::Celeba);
    set.skipped = skipped;
    (set.train, set.val, set.test) = split3(present, seed, 0.8, 0.1);
    Ok(set)
}

/// The samples of `list_attr_celeba.txt` whose images `exist` in `images` and lie in the
/// official train partition, and the rows skipped with their reasons.
pub fn parse_attributes(
    text: &str,
    images: &Path,
    exists: impl Fn(&str) -> bool,
    partition: &HashMap<String, u8>,
) -> Result<(Vec<Sample>, Vec<Skipped>)> {
    let mut lines = text.lines();
    lines.next();
    let names: Vec<&str> = lines.next().map(|l| l.split_whitespace().collect()).unwrap_or_default();
    let column = |attr: &str| names.iter().position(|n| *n == attr);
    let (Some(male), Some(young)) = (column("Male"), column("Young")) else {
        bail!("the attribute file lacks the Male or Young attribute");
    };
    let mut skipped = Vec::new();
    let mut present = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(file) = fields.first() else { continue };
        let value = |i: usize| fields.get(i + 1).and_then(|v| v.parse::<i8>().ok()).filter(|v| *v == 1 || *v == -1);
        let (Some(is_male), Some(is_young)) = (value(male), value(young)) else {
            skipped.push(Skipped::new(file, "malformed attribute row"));
            continue;
        };
        if !exists(file) {
            // The attribute file covers 20,000 images; only those present here are used.
            continue;
        }
        if partition.get(*file).is_some_and(|p| *p != 0) {
            skipped.push(Skipped::new(file, "not in the official train partition"));
            continue;
        }
        // In the data set's task order: gender (0 male, 1 female), young (0 old, 1 young).
        present.push(Sample {
            file: images.join(file),
            key: format!("celeba/{file}"),
            labels: vec![Label::Class(usize::from(is_male != 1)), Label::Class(usize::from(is_young == 1))],
        });
    }
    Ok((present, skipped))
}

/// Faces of `set` with a Young label and no age get their age as a range: under
/// [`YOUNG_BELOW`] years if young, from it up if not. A set with no age or no Young task is left
/// as it is. Without it a model trained on UTKFace and CelebA at once reads CelebA's faces
/// (whose age no loss sees) decades apart from their Young answer.
pub fn bound_ages_by_young(set: &mut DataSet) {
    let (Some(age), Some(young)) = (set.column("age"), set.column("young")) else { return };
    if set.tasks[young] != TaskSpec::young() {
        return;
    }
    for sample in set.train.iter_mut().chain(&mut set.val).chain(&mut set.test) {
        if let (Label::Missing, Label::Class(class)) = (sample.labels[age], sample.labels[young]) {
            sample.labels[age] = match class {
                1 => Label::Bounded { low: 0.0, high: YOUNG_BELOW },
                _ => Label::Bounded { low: YOUNG_BELOW, high: f32::INFINITY },
            };
        }
    }
}

/// `list_eval_partition.txt`: file name -> 0 train, 1 validation, 2 test.
pub fn parse_partition(text: &str) -> HashMap<String, u8> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next()?.parse().ok()?))
        })
        .collect()
}
