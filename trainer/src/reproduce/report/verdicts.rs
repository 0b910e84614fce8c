//! Verdicts on the thesis's claims: how often one configuration beats another beyond the
//! seeds' spread.

use facemtl::mtl::TaskSpec;

use super::index::{Index, Stat, header};
use crate::data::DataSetId;

/// better / tie / worse of `a` against `b` for `task`: a difference inside the larger of the
/// two standard deviations is a tie.
pub(super) fn compare(task: &TaskSpec, a: Stat, b: Stat) -> std::cmp::Ordering {
    let noise = a.std.max(b.std);
    let gain = if task.is_regression() { b.mean - a.mean } else { a.mean - b.mean };
    if gain > noise {
        std::cmp::Ordering::Greater
    } else if gain < -noise {
        std::cmp::Ordering::Less
    } else {
        std::cmp::Ordering::Equal
    }
}

/// A claim "`better` beats `worse`" over every data set, backbone and task: the verdict and the
/// numbers behind it.
pub(super) fn verdict(index: &Index, better: &str, worse: &str, datasets: &[DataSetId]) -> (String, Vec<String>) {
    let (mut wins, mut ties, mut losses) = (0, 0, 0);
    let mut lines = Vec::new();
    for &data in datasets {
        for backbone in index.backbones() {
            for task in &data.tasks() {
                let (Some(a), Some(b)) =
                    (index.row_stat(data, backbone, better, task), index.row_stat(data, backbone, worse, task))
                else {
                    continue;
                };
                let word = match compare(task, a, b) {
                    std::cmp::Ordering::Greater => {
                        wins += 1;
                        "better"
                    }
                    std::cmp::Ordering::Less => {
                        losses += 1;
                        "worse"
                    }
                    std::cmp::Ordering::Equal => {
                        ties += 1;
                        "within noise"
                    }
                };
                lines.push(format!(
                    "{} {} {}: {:.2} ± {:.2} vs {:.2} ± {:.2} ({word})",
                    data.title(),
                    backbone,
                    header(task),
                    a.mean,
                    a.std,
                    b.mean,
                    b.std
                ));
            }
        }
    }
    let total = wins + ties + losses;
    let word = verdict_word(wins, ties, losses);
    (format!("**{word}**: better in {wins}, within noise in {ties}, worse in {losses} of {total} comparisons"), lines)
}

/// A claim is confirmed when it never loses and wins at least half its comparisons, not
/// confirmed when it never wins, and mixed otherwise.
pub(super) fn verdict_word(wins: usize, ties: usize, losses: usize) -> &'static str {
    let total = wins + ties + losses;
    if total == 0 {
        "not tested"
    } else if losses == 0 && wins * 2 >= total {
        "confirmed"
    } else if wins == 0 {
        "not confirmed"
    } else {
        "mixed"
    }
}

/// The bias claim holds when MTL narrows the gap on every backbone tested: a verdict over
/// `tested` comparisons, `reduced` of them won and the rest lost.
pub(super) fn bias_word(reduced: usize, tested: usize) -> &'static str {
    verdict_word(reduced, 0, tested - reduced)
}
