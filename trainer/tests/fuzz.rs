//! Structure-aware fuzzing of the data-set parsers: UTKFace file names, the CORAL protocol's
//! CSV files and CelebA's attribute and partition files. Rows are generated from the real
//! formats (valid rows, then rows with fields dropped, swapped, overflowing, of other
//! encodings and line ends), and the property is: no panic, and every row is either a sample
//! or skipped with its reason. `PROPTEST_CASES` sets the cases (default 256; see
//! `shared/tests/fuzz.rs`).

use std::collections::HashMap;
use std::path::Path;

use facemtl_trainer::data::{celeba, utkface};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// Cases per target: proptest's 256, or `PROPTEST_CASES`; failures are kept beside this file
/// (`fuzz.regressions`) and replayed first on every later run.
fn config() -> Config {
    Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..Config::default()
    }
}

/// A number field as data sets write it, or as a damaged file might.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u32..120).prop_map(|n| n.to_string()),
        1 => Just("4294967295".to_string()),
        1 => Just("99999999999999999999".to_string()),
        1 => Just("-1".to_string()),
        1 => Just(String::new()),
        1 => Just(" 7".to_string()),
        1 => "[^,\n]{0,6}",
    ]
}

/// A UTKFace-like file name: `age_gender_race_date.jpg.chip.jpg`, with fields missing or odd.
fn utk_name() -> impl Strategy<Value = String> {
    (
        number(),
        number(),
        number(),
        "[0-9]{0,17}",
        prop::sample::select(vec![".jpg.chip.jpg", "jpg.chip.jpg", " .jpg.chip.jpg", ""]),
        0usize..4,
    )
        .prop_map(|(age, gender, race, date, end, drop)| {
            let mut fields = vec![age, gender, race, date];
            if drop < 3 && fields.len() > drop {
                fields.remove(drop);
            }
            format!("{}{end}", fields.join("_"))
        })
}

fn line_end() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["\n", "\r\n", "\r", ""])
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn utkface_names_parse_or_say_why(name in prop_oneof![utk_name(), ".{0,40}"]) {
        if let Ok((_, gender, race)) = utkface::parse_name(&name) {
            prop_assert!(gender <= 1 && race <= 4);
        }
    }

    #[test]
    fn coral_csv_rows_are_each_a_sample_or_a_skip(
        rows in prop::collection::vec((number(), utk_name(), number(), any::<bool>(), line_end()), 0..40),
        header in prop_oneof![Just(",file,age".to_string()), ".{0,20}"],
    ) {
        let mut text = format!("{header}\n");
        for (index, file, age, extra_column, end) in &rows {
            text.push_str(&format!("{index},{file},{age}{}{end}", if *extra_column { ",x" } else { "" }));
        }
        let present = |f: &str| !f.len().is_multiple_of(3);
        let (samples, skipped) = utkface::parse_coral_csv(&text, "fuzz.csv", Path::new("images"), present);
        prop_assert_eq!(samples.len() + skipped.len(), text.lines().count().saturating_sub(1));
        for s in &samples {
            prop_assert!(s.value(1).unwrap() >= 21.0 && s.class(2).unwrap() <= 4 && s.class(0).unwrap() <= 1);
        }
    }

    #[test]
    fn celeba_attribute_rows_are_each_a_sample_a_skip_or_absent(
        columns in prop::collection::vec(prop::sample::select(vec!["Male", "Young", "Smiling", "Bald", ""]), 0..6),
        rows in prop::collection::vec(("[0-9]{1,6}\\.jpg", prop::collection::vec(prop::sample::select(vec!["1", "-1", "0", "x", "127", "-128", "300"]), 0..7), line_end()), 0..30),
        partition in prop::collection::vec(("[0-9]{1,6}\\.jpg", prop::sample::select(vec!["0", "1", "2", "9", "-1", "x", ""])), 0..30),
    ) {
        let mut text = format!("202599\r\n{}\r\n", columns.join(" "));
        for (file, values, end) in &rows {
            text.push_str(&format!("{file} {}{end}", values.join(" ")));
        }
        let partition_text: String = partition.iter().map(|(f, p)| format!("{f} {p}\n")).collect();
        let partition: HashMap<String, u8> = celeba::parse_partition(&partition_text);
        let present = |f: &str| f.len().is_multiple_of(2);
        match celeba::parse_attributes(&text, Path::new("images"), present, &partition) {
            Ok((samples, skipped)) => {
                prop_assert!(columns.contains(&"Male") && columns.contains(&"Young"));
                prop_assert!(samples.len() + skipped.len() <= text.lines().count().saturating_sub(2));
                prop_assert!(samples.iter().all(|s| s.class(0).unwrap() <= 1 && s.class(1).unwrap() <= 1));
            }
            Err(_) => prop_assert!(!(columns.contains(&"Male") && columns.contains(&"Young"))),
        }
    }

    #[test]
    fn arbitrary_text_never_panics_a_parser(text in "(.|\r|\n){0,300}") {
        let _ = utkface::parse_coral_csv(&text, "fuzz.csv", Path::new("images"), |_| true);
        let _ = celeba::parse_attributes(&text, Path::new("images"), |_| true, &celeba::parse_partition(&text));
    }
}
