//! How the batches of a run on several data sets mix them: each set's share of the first
//! epoch's batches, drawn as the session draws them (a uniform shuffle of the union).

use facemtl::training::order::epoch_order;

use crate::data::Sample;

/// One data set's place in the batches of an epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Mixing {
    /// The data set, as its samples' cache keys name it (`utkface`, `celeba`, `csv`).
    pub source: String,
    /// Its share of the training faces.
    pub share: f64,
    /// Its faces per full batch: mean, standard deviation, fewest and most.
    pub mean: f64,
    pub sd: f64,
    pub fewest: usize,
    pub most: usize,
}

/// The data set a sample comes from: its key up to the first `/` for a built-in set (`utkface/...`),
/// `csv` for a CSV's (`csv:PHOTO:...`; a run reads at most one CSV).
fn source(sample: &Sample) -> &str {
    if sample.key.starts_with("csv:") { "csv" } else { sample.key.split('/').next().unwrap_or(&sample.key) }
}

/// Each data set's place in the full batches of `batch` faces of epoch 0 with `seed` (in its
/// one batch when there are fewer faces); empty when the training faces come from one set.
pub fn of(train: &[Sample], seed: u64, batch: usize) -> Vec<Mixing> {
    let mut sources: Vec<&str> = train.iter().map(source).collect();
    sources.sort_unstable();
    sources.dedup();
    if sources.len() < 2 || batch == 0 {
        return Vec::new();
    }
    let order = epoch_order(seed, 0, train.len());
    // Fewer faces than a batch (a `--limit` run): its one batch, short as it is.
    let batches: Vec<&[i64]> = if order.len() < batch { vec![&order[..]] } else { order.chunks_exact(batch).collect() };
    sources
        .into_iter()
        .map(|name| {
            let counts: Vec<usize> =
                batches.iter().map(|b| b.iter().filter(|&&i| source(&train[i as usize]) == name).count()).collect();
            let n = counts.len().max(1) as f64;
            let mean = counts.iter().sum::<usize>() as f64 / n;
            let sd = (counts.iter().map(|c| (*c as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
            Mixing {
                source: name.to_string(),
                share: train.iter().filter(|s| source(s) == name).count() as f64 / train.len() as f64,
                mean,
                sd,
                fewest: counts.iter().copied().min().unwrap_or(0),
                most: counts.iter().copied().max().unwrap_or(0),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(key: String) -> Sample {
        Sample { file: "x.jpg".into(), key, labels: Vec::new() }
    }

    #[test]
    fn batches_hold_each_set_in_proportion_and_one_set_says_nothing() {
        let train: Vec<Sample> = (0..4000)
            .map(|i| sample(if i % 4 == 0 { format!("celeba/{i}.jpg") } else { format!("utkface/{i}.jpg") }))
            .collect();
        let mixing = of(&train, 7, 64);
        assert_eq!(mixing.iter().map(|m| m.source.as_str()).collect::<Vec<_>>(), ["celeba", "utkface"]);
        let celeba = &mixing[0];
        assert_eq!(celeba.share, 0.25);
        // 16 of 64 on average, with the hypergeometric spread of about 3.5.
        assert!((celeba.mean - 16.0).abs() < 0.5 && (2.5..4.5).contains(&celeba.sd), "{celeba:?}");
        assert!(celeba.fewest < 16 && celeba.most > 16);
        assert!((mixing[0].mean + mixing[1].mean - 64.0).abs() < 1e-9);
        assert!(of(&train[1..4], 7, 64).is_empty());
        // Fewer faces than a batch: the one short batch, counted as it is.
        let few = of(&train[..48], 7, 64);
        assert_eq!((few[0].mean, few[0].sd, few[0].fewest, few[0].most), (12.0, 0.0, 12, 12), "{few:?}");
        assert!(few[0].sd.is_sign_positive(), "no -0.0 printed");
        assert_eq!(source(&sample("csv:/data/photos/a.jpg:12:34".into())), "csv");
    }
}
