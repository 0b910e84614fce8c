//! UTKFace: labels in the file names (`age_gender_race_datetime.jpg.chip.jpg`), and the CORAL
//! protocol's CSVs (ages 21-60; column `age` is the true age minus 21).

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::{DataSet, DataSetId, Label, Sample, Skipped, split3};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// CORAL (as the thesis): `utk_train.csv` split 80:20 into train/validation, test
    /// `utk_test.csv`; ages 21-60.
    Coral,
    /// All 23,707 faces, ages 1-116: seeded 80/10/10 split.
    AllAges,
}

/// Labels parsed from a file name; `Err` says why the name is unusable.
pub fn parse_name(name: &str) -> Result<(u32, u8, u8), String> {
    let mut fields = name.split('_');
    let mut number = |what: &str| -> Result<u32, String> {
        fields.next().and_then(|f| f.trim().parse::<u32>().ok()).ok_or_else(|| format!("no {what} field"))
    };
    let age = number("age")?;
    let gender = number("gender")?;
    let race = number("race")?;
    // A name without race reads its date as the race: far out of 0..=4.
    if gender > 1 {
        return Err(format!("gender {gender} is not 0 or 1"));
    }
    if race > 4 {
        return Err("no race field".into());
    }
    Ok((age, gender as u8, race as u8))
}

/// A face of `UTKFace/` with its labels in the order of the data set's tasks: gender, age
/// (years), race.
fn sample(images: &Path, name: &str, age: u32, gender: u8, race: u8) -> Sample {
    Sample {
        file: images.join(name),
        key: format!("utkface/{name}"),
        labels: vec![Label::Class(gender.into()), Label::Value(age as f32), Label::Class(race.into())],
    }
}

/// The samples of a CORAL protocol CSV named `csv` (header, then `index,file,age - 21` rows)
/// whose images lie in `images`, and the rows skipped with their reasons: malformed rows,
/// images that do not `exist`, names without labels, and ages that disagree with the name.
pub fn parse_coral_csv(
    text: &str,
    csv: &str,
    images: &Path,
    exists: impl Fn(&str) -> bool,
) -> (Vec<Sample>, Vec<Skipped>) {
    let mut samples = Vec::new();
    let mut skipped = Vec::new();
    for (line_no, line) in text.lines().enumerate().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        let entry = format!("{csv}:{}", line_no + 1);
        let (Some(file), Some(coral_age)) = (cols.get(1), cols.get(2).and_then(|a| a.trim().parse::<u32>().ok()))
        else {
            skipped.push(Skipped::new(&entry, "malformed row"));
            continue;
        };
        match parse_name(file) {
            _ if !exists(file) => skipped.push(Skipped::new(file, "image missing")),
            Ok((age, gender, race)) if Some(age) == coral_age.checked_add(21) => {
                samples.push(sample(images, file, age, gender, race))
            }
            Ok((age, ..)) => skipped.push(Skipped::new(
                file,
                format!("CSV age {} disagrees with the name's {age}", u64::from(coral_age) + 21),
            )),
            Err(reason) => skipped.push(Skipped::new(file, reason)),
        }
    }
    (samples, skipped)
}

pub fn load(data_dir: &Path, protocol: Protocol, seed: u64) -> Result<DataSet> {
    let root = data_dir.join("utkface");
    let images = root.join("UTKFace");
    let mut set = DataSet::built_in(match protocol {
        Protocol::Coral => DataSetId::UtkfaceCoral,
        Protocol::AllAges => DataSetId::UtkfaceAllAges,
    });
    match protocol {
        Protocol::Coral => {
            let mut read = |csv: &str| -> Result<Vec<Sample>> {
                let path = root.join("coral").join(csv);
                let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
                let (samples, skipped) = parse_coral_csv(&text, csv, &images, |f| images.join(f).is_file());
                set.skipped.extend(skipped);
                Ok(samples)
            };
            let train = read("utk_train.csv")?;
            let test = read("utk_test.csv")?;
            let (train, val, _) = split3(train, seed, 0.8, 0.2);
            (set.train, set.val, set.test) = (train, val, test);
        }
        Protocol::AllAges => {
            let mut all = Vec::new();
            let mut names: Vec<String> = fs::read_dir(&images)
                .with_context(|| format!("cannot list {}", images.display()))?
                .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .filter(|n| n.ends_with(".jpg"))
                .collect();
            names.sort();
            for name in names {
                match parse_name(&name) {
                    Ok((age, gender, race)) => all.push(sample(&images, &name, age, gender, race)),
                    Err(reason) => set.skipped.push(Skipped::new(&name, reason)),
                }
            }
            (set.train, set.val, set.test) = split3(all, seed, 0.8, 0.1);
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_the_known_anomalies_are_refused_or_survived() {
        assert_eq!(parse_name("26_0_2_20170104023102422.jpg.chip.jpg"), Ok((26, 0, 2)));
        assert!(parse_name("39_1_20170116174525125.jpg.chip.jpg").is_err(), "race missing");
        assert_eq!(parse_name("55_0_0_20170116232725357jpg.chip.jpg"), Ok((55, 0, 0)), "odd date field");
        assert_eq!(parse_name("24_0_1_20170116220224657 .jpg.chip.jpg"), Ok((24, 0, 1)), "space before .jpg");
        assert!(parse_name("notes.txt").is_err());
    }
}
