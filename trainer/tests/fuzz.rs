//! Structure-aware fuzzing of the data-set parsers: UTKFace file names, the CORAL protocol's
//! CSV files, CelebA's attribute and partition files, and a user's CSV data set (its task
//! declarations and its rows). Rows are generated from the real formats (valid rows, then rows
//! with fields dropped, swapped, overflowing, of other encodings and line ends), and the
//! property is: no panic, no allocation beyond 1 GiB (the shared fuzz binary's allocator), and
//! every row is either a sample or skipped with its reason. `PROPTEST_CASES` sets the cases
//! (default 256; see `shared/tests/fuzz/`).

use std::collections::HashMap;
use std::path::Path;

#[path = "../../shared/tests/fuzz/cap.rs"]
mod cap;

use facemtl::mtl::{AgeNorm, TaskSpec, check_tasks};
use facemtl_trainer::data::{celeba, csv, utkface};
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

/// A task declaration as a user might write it, well or badly.
fn declaration() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "band:class:child,adult",
            "weight:regression",
            "age:regression",
            "mood:class:sad,happy,calm",
        ]).prop_map(str::to_string),
        1 => prop::sample::select(vec![
            "score:regression",
            "file:class:a,b",
            "x:class:a,a",
            "x:class:a",
            ":class:a,b",
            "x:class:a,,b",
            "x:regression:extra",
        ]).prop_map(str::to_string),
        1 => "[a-z_:,]{0,24}",
    ]
}

/// A CSV cell for a task's column: a label, a number (ordinary, tiny, huge, not one), or junk.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["child", "adult", "sad", "happy", "calm"]).prop_map(str::to_string),
        3 => (0u32..120).prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec!["0.0001", "1e-9", "3e38", "1e7", "-5", "NaN", "inf", ""]).prop_map(str::to_string),
        1 => "[a-z0-9.]{0,5}",
    ]
}

/// A folder holding `photos/0.jpg` to `photos/9.jpg`, shared by the cases.
fn photo_folder() -> &'static Path {
    static FOLDER: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    FOLDER
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("photos")).unwrap();
            for i in 0..10 {
                std::fs::write(dir.path().join(format!("photos/{i}.jpg")), [i as u8]).unwrap();
            }
            dir
        })
        .path()
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

    #[test]
    fn task_declarations_parse_into_tasks_a_network_can_have_or_say_why(text in prop_oneof![declaration(), ".{0,40}"]) {
        if let Ok(task) = TaskSpec::parse(&text, AgeNorm::ALL_AGES) {
            prop_assert_eq!(task.check(), Ok(()));
        }
    }

    #[test]
    fn csv_data_sets_load_with_every_row_a_sample_or_a_skip(
        declarations in prop::collection::vec(declaration(), 1..4),
        rows in prop::collection::vec((0usize..14, prop::collection::vec(cell(), 3), prop::sample::select(vec!["", "train", "val", "test", "later"])), 0..60),
        seed in any::<u64>(),
    ) {
        let names: Vec<String> = declarations.iter().map(|d| d.split(':').next().unwrap_or_default().to_string()).collect();
        let mut text = format!("image,{},split\n", names.join(","));
        for (photo, cells, split) in &rows {
            let cells: Vec<&str> = (0..names.len()).map(|i| cells[i % 3].as_str()).collect();
            text.push_str(&format!("photos/{photo}.jpg,{},{split}\n", cells.join(",")));
        }
        let file = tempfile::NamedTempFile::new_in(photo_folder()).unwrap();
        std::fs::write(file.path(), &text).unwrap();
        if let Ok(set) = csv::load(file.path(), &declarations, seed) {
            prop_assert_eq!(check_tasks(&set.tasks), Ok(()));
            prop_assert_eq!(set.all().count() + set.skipped.len(), rows.len());
            for sample in set.all() {
                for (task, label) in set.tasks.iter().zip(&sample.labels) {
                    prop_assert_eq!(task.check_label(label), Ok(()));
                }
            }
        }
    }
}
