//! The thesis's published figures (`../shared/docs/thesis-figures.md`), which the report sets
//! beside ours: accuracy in %, age MAE in years; UTKFace on the CORAL protocol, CelebA on its
//! official test set (our subset is not comparable); every backbone fine-tuned.

use crate::data::DataSetId;

/// A configuration's figures, by task name.
pub type Figures = &'static [(&'static str, f64)];

/// The backbone of the thesis's headline network, whose figures stand beside each configuration
/// of ours that the thesis ran too.
pub const HEADLINE: &str = "SE-ResNet-50-128D";

/// The rows of the sweep's single-task and MTL configurations in [`backbones`]' tables.
const MODELS: [&str; 3] = ["baseline", "single-net", "mtl-learned"];

/// The headline backbone's ablations (Tables 5.1-5.5), named as the sweep names its experiments.
const ABLATIONS: &[(DataSetId, &str, Figures)] = &[
    (DataSetId::UtkfaceCoral, "mtl-average", &[("gender", 98.01), ("race", 87.56), ("age", 5.17)]),
    (DataSetId::UtkfaceCoral, "mtl-early-stop", &[("gender", 98.31), ("race", 86.58), ("age", 4.64)]),
    (DataSetId::UtkfaceCoral, "mtl-lambda-0.001", &[("gender", 98.31), ("race", 86.83), ("age", 4.76)]),
    (DataSetId::UtkfaceCoral, "mtl-lambda-0.01", &[("gender", 98.39), ("race", 86.97), ("age", 4.74)]),
    (DataSetId::UtkfaceCoral, "mtl-lambda-1", &[("gender", 98.23), ("race", 86.79), ("age", 4.82)]),
    (DataSetId::Celeba, "mtl-average", &[("gender", 98.74), ("young", 87.18)]),
];

/// The headline backbone's figure for `task` of the sweep's configuration `row` (an experiment
/// name; `baseline` and `single-net` for the single-task rows) on `data`, where the thesis has one.
pub fn figure(data: DataSetId, row: &str, task: &str) -> Option<f64> {
    let figures = match MODELS.iter().position(|m| *m == row) {
        Some(model) => backbones(data).iter().find(|(name, _)| *name == HEADLINE)?.1[model],
        None => ABLATIONS.iter().find(|(d, r, _)| *d == data && *r == row)?.2,
    };
    value(figures, task)
}

/// The figure of `task` among `figures`, if the thesis published one.
pub fn value(figures: Figures, task: &str) -> Option<f64> {
    figures.iter().find(|(t, _)| *t == task).map(|(_, value)| *value)
}

/// One backbone's row of Tables 4.6-4.15: its single-task baseline, single-task network and MTL
/// figures.
type BackboneRow = (&'static str, [Figures; 3]);

/// Tables 4.6-4.10, UTKFace on the CORAL protocol.
const CORAL_BACKBONES: &[BackboneRow] = &[
    (
        "LightCNN",
        [
            &[("gender", 91.69), ("race", 73.01), ("age", 7.14)],
            &[("gender", 91.24), ("race", 74.39), ("age", 6.35)],
            &[("gender", 96.56), ("race", 84.76), ("age", 4.82)],
        ],
    ),
    (
        "SphereFace",
        [
            &[("gender", 90.75), ("race", 67.52), ("age", 8.69)],
            &[("gender", 91.36), ("race", 69.15), ("age", 6.61)],
            &[("gender", 97.52), ("race", 85.29), ("age", 5.00)],
        ],
    ),
    (
        "Inception-ResNet (FaceNet)",
        [
            &[("gender", 87.01), ("race", 77.20), ("age", 8.93)],
            &[("gender", 88.03), ("race", 80.10), ("age", 7.39)],
            &[("gender", 97.02), ("race", 85.34), ("age", 6.36)],
        ],
    ),
    (
        "ResNet-50",
        [
            &[("gender", 93.55), ("race", 80.61), ("age", 4.98)],
            &[("gender", 94.82), ("race", 82.51), ("age", 4.81)],
            &[("gender", 98.41), ("race", 86.87), ("age", 4.72)],
        ],
    ),
    (
        HEADLINE,
        [
            &[("gender", 93.12), ("race", 80.79), ("age", 5.43)],
            &[("gender", 92.58), ("race", 80.97), ("age", 5.22)],
            &[("gender", 98.47), ("race", 87.56), ("age", 4.68)],
        ],
    ),
];

/// Tables 4.11-4.15, CelebA.
const CELEBA_BACKBONES: &[BackboneRow] = &[
    (
        "LightCNN",
        [
            &[("gender", 84.86), ("young", 76.02)],
            &[("gender", 90.68), ("young", 77.54)],
            &[("gender", 97.94), ("young", 87.99)],
        ],
    ),
    (
        "SphereFace",
        [
            &[("gender", 86.03), ("young", 73.95)],
            &[("gender", 91.33), ("young", 82.31)],
            &[("gender", 98.11), ("young", 86.89)],
        ],
    ),
    (
        "Inception-ResNet (FaceNet)",
        [
            &[("gender", 93.93), ("young", 81.25)],
            &[("gender", 96.89), ("young", 86.52)],
            &[("gender", 98.59), ("young", 87.62)],
        ],
    ),
    (
        "ResNet-50",
        [
            &[("gender", 94.90), ("young", 82.01)],
            &[("gender", 96.85), ("young", 86.30)],
            &[("gender", 98.79), ("young", 86.83)],
        ],
    ),
    (
        HEADLINE,
        [
            &[("gender", 92.43), ("young", 78.92)],
            &[("gender", 97.23), ("young", 84.75)],
            &[("gender", 98.82), ("young", 87.53)],
        ],
    ),
];

/// Tables 4.6-4.15, every backbone the thesis tried on `data` (none for the sets it did not
/// use).
pub fn backbones(data: DataSetId) -> &'static [BackboneRow] {
    match data {
        DataSetId::UtkfaceCoral => CORAL_BACKBONES,
        DataSetId::Celeba => CELEBA_BACKBONES,
        DataSetId::UtkfaceAllAges | DataSetId::Csv => &[],
    }
}

/// Section 5.3, CelebA with ResNet-50: Young/Old class accuracy (model, Old, Young) of the
/// single-task network and of MTL.
pub const BIAS_BACKBONE: &str = "ResNet-50";
pub const BIAS: [(&str, f64, f64); 2] = [("single-task network", 55.73, 96.10), ("MTL", 84.46, 87.59)];

/// Earlier work the thesis compares with: UTKFace age MAE (Table 4.16) and CelebA (section 4.4.4).
pub const EARLIER_WORK: &str = "UTKFace age MAE (CORAL protocol, Table 4.16): CE-CNN 6.02, OR-CNN 5.60, \
     CORAL-CNN 5.25, the thesis's MTL 4.68; CelebA (section 4.4.4): DMM-CNN gender 98.29 %, Young 88.94 % \
     (trained on all 40 attributes), the thesis's MTL 98.82 / 87.53 %.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_read_from_the_headline_backbones_tables_and_the_ablations() {
        let coral = DataSetId::UtkfaceCoral;
        assert_eq!(figure(coral, "mtl-learned", "age"), Some(4.68));
        assert_eq!(figure(coral, "baseline", "race"), Some(80.79));
        assert_eq!(figure(DataSetId::Celeba, "single-net", "young"), Some(84.75));
        assert_eq!(figure(coral, "mtl-lambda-1", "age"), Some(4.82));
        assert_eq!(figure(DataSetId::Celeba, "mtl-average", "gender"), Some(98.74));
        assert_eq!(figure(DataSetId::Celeba, "mtl-early-stop", "gender"), None, "Table 5.4 is UTKFace only");
        assert_eq!(figure(coral, "mtl-dwa", "gender"), None, "the thesis did not run DWA");
        assert_eq!(figure(DataSetId::UtkfaceAllAges, "mtl-learned", "gender"), None);
    }
}
