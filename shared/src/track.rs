//! Faces followed from one video frame to the next, so that what the model says of a face is
//! computed again only now and then, and the detector searches only around them. A person's
//! gender, age and race do not change between two frames, while the backbone costs most of a
//! frame's time (BENCHMARKS.md). The detector still runs on every frame, so boxes follow the
//! faces as they move: in the regions around the faces of the frame before (a quarter of the
//! whole frame's pixels each, so for up to three faces), as long as they hold those faces and
//! no other, and in the whole frame when a face's attributes are due to be computed again, so
//! that attributes always come from a whole-frame box (the regions' coarser boxes cost
//! accuracy, BENCHMARKS.md) and a face coming into view is found within `refresh_frames`
//! frames. A face is matched to the previous frame's face whose box overlaps it most; a face
//! with no match, or whose attributes are `refresh_frames` frames old, is computed.

use crate::detect::{BBox, Detection};
use crate::predict::Attributes;

/// How faces are followed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrackerConfig {
    /// The least overlap (intersection over union) of a box with the previous frame's box for
    /// the two to be one face.
    pub min_iou: f32,
    /// A face's attributes are computed again after this many frames, and the whole frame is
    /// searched again at least as often.
    pub refresh_frames: u32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        // Half a second at 20 frames/s: a new person stepping into the same place, or into
        // view elsewhere, is recognised as new within that time.
        Self { min_iou: 0.4, refresh_frames: 10 }
    }
}

#[derive(Debug, Clone)]
struct Tracked {
    bbox: BBox,
    attributes: Attributes,
    /// Frames since its attributes were computed.
    age: u32,
}

/// The faces of the last frame and what was said of them.
#[derive(Debug, Clone, Default)]
pub struct FaceTracker {
    config: TrackerConfig,
    faces: Vec<Tracked>,
    /// Frames since the whole frame was searched.
    since_search: u32,
}

impl FaceTracker {
    pub fn new(config: TrackerConfig) -> Self {
        Self { config, faces: Vec::new(), since_search: 0 }
    }

    /// The boxes of the faces followed, when the next frame may be searched around them alone;
    /// `None` when it must be searched whole: no face is followed, or one is due to be computed
    /// again, or the whole frame was last searched `refresh_frames` frames ago.
    pub fn regions(&self) -> Option<Vec<BBox>> {
        let due = |age: u32| age + 1 >= self.config.refresh_frames;
        let whole = self.faces.is_empty() || due(self.since_search) || self.faces.iter().any(|f| due(f.age));
        (!whole).then(|| self.faces.iter().map(|f| f.bbox).collect())
    }

    /// Whether `detections`, found in the regions around the faces followed, are those faces
    /// again and no other (a newcomer's attributes come from a whole-frame box too): else the
    /// whole frame must be searched.
    pub fn holds_just_the_followed(&self, detections: &[Detection]) -> bool {
        detections.len() == self.faces.len()
            && self.faces.iter().all(|f| detections.iter().any(|d| f.bbox.iou(&d.bbox) >= self.config.min_iou))
    }

    /// For each of a new frame's detections, the attributes it keeps from the face it continues
    /// and how old they are; `None` where they must be computed.
    pub fn plan(&self, detections: &[Detection]) -> Vec<Option<(Attributes, u32)>> {
        let mut taken = vec![false; self.faces.len()];
        detections
            .iter()
            .map(|d| {
                let (best, iou) = self
                    .faces
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !taken[*i])
                    .map(|(i, f)| (i, f.bbox.iou(&d.bbox)))
                    .max_by(|a, b| a.1.total_cmp(&b.1))?;
                let face = &self.faces[best];
                if iou < self.config.min_iou || face.age + 1 >= self.config.refresh_frames {
                    return None;
                }
                taken[best] = true;
                Some((face.attributes.clone(), face.age + 1))
            })
            .collect()
    }

    /// Follow this frame's faces: their boxes, attributes, and the age of each (0 when just
    /// computed); faces not seen in this frame are forgotten. `whole`: the whole frame was
    /// searched.
    pub fn update(&mut self, faces: impl IntoIterator<Item = (BBox, Attributes, u32)>, whole: bool) {
        self.faces = faces.into_iter().map(|(bbox, attributes, age)| Tracked { bbox, attributes, age }).collect();
        self.since_search = if whole { 0 } else { self.since_search + 1 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Keypoints, Point};
    use crate::predict::Age;

    fn detection(x: f32) -> Detection {
        let point = Point { x: x + 50.0, y: 50.0 };
        Detection {
            bbox: BBox { x_min: x, y_min: 0.0, x_max: x + 100.0, y_max: 100.0 },
            score: 0.9,
            keypoints: Keypoints {
                right_eye: point,
                left_eye: point,
                nose: point,
                mouth: point,
                right_ear: point,
                left_ear: point,
            },
        }
    }

    fn said(years: f32) -> Attributes {
        Attributes {
            female_probability: Some(0.5),
            age: Some(Age { years, low: None, high: None, plus_minus: Some(5.0) }),
            ..Default::default()
        }
    }

    fn years(a: &Option<(Attributes, u32)>) -> Option<f32> {
        a.as_ref().map(|(a, _)| a.age.as_ref().unwrap().years)
    }

    /// One frame: plan, compute the missing ones as `compute` says, and follow them.
    fn frame(tracker: &mut FaceTracker, detections: &[Detection], compute: impl Fn(usize) -> f32) -> Vec<Option<f32>> {
        let plan = tracker.plan(detections);
        let planned: Vec<Option<f32>> = plan.iter().map(years).collect();
        tracker.update(
            detections.iter().zip(plan).enumerate().map(|(i, (d, kept))| match kept {
                Some((attributes, age)) => (d.bbox, attributes, age),
                None => (d.bbox, said(compute(i)), 0),
            }),
            true,
        );
        planned
    }

    #[test]
    fn a_face_that_stays_keeps_its_attributes_until_they_are_refreshed() {
        let mut tracker = FaceTracker::new(TrackerConfig { min_iou: 0.4, refresh_frames: 3 });
        assert_eq!(frame(&mut tracker, &[detection(0.0)], |_| 30.0), [None], "a new face is computed");
        assert_eq!(frame(&mut tracker, &[detection(5.0)], |_| 99.0), [Some(30.0)], "moved a little: kept");
        assert_eq!(frame(&mut tracker, &[detection(10.0)], |_| 99.0), [Some(30.0)]);
        assert_eq!(frame(&mut tracker, &[detection(10.0)], |_| 31.0), [None], "three frames old: computed again");
        assert_eq!(frame(&mut tracker, &[detection(10.0)], |_| 99.0), [Some(31.0)]);
    }

    #[test]
    fn a_face_elsewhere_or_after_a_gap_is_computed_and_two_faces_never_share_one_track() {
        let mut tracker = FaceTracker::new(TrackerConfig::default());
        frame(&mut tracker, &[detection(0.0)], |_| 30.0);
        assert_eq!(frame(&mut tracker, &[detection(80.0)], |_| 50.0), [None], "another place: another face");
        frame(&mut tracker, &[], |_| 0.0);
        assert_eq!(frame(&mut tracker, &[detection(80.0)], |_| 51.0), [None], "gone for a frame: computed anew");
        let two = [detection(80.0), detection(85.0)];
        assert_eq!(frame(&mut tracker, &two, |_| 60.0), [Some(51.0), None], "one track, one face");
        assert_eq!(frame(&mut tracker, &two, |_| 0.0), [Some(51.0), Some(60.0)]);
    }

    #[test]
    fn followed_faces_are_searched_around_until_one_is_due_lost_or_joined() {
        let mut tracker = FaceTracker::new(TrackerConfig { min_iou: 0.4, refresh_frames: 3 });
        assert_eq!(tracker.regions(), None, "nothing followed: the whole frame");
        let faces = [detection(0.0), detection(300.0)];
        let computed = [detection(0.0)];
        let computed_now = frame(&mut tracker, &computed, |_| 30.0);
        assert_eq!(computed_now, [None]);
        assert_eq!(tracker.regions(), Some(vec![computed[0].bbox]));
        // A second face found in the region's frame: the whole frame must be searched.
        assert!(!tracker.holds_just_the_followed(&faces));
        assert!(tracker.holds_just_the_followed(&[detection(5.0)]), "moved a little");
        assert!(!tracker.holds_just_the_followed(&[]), "lost");
        assert!(!tracker.holds_just_the_followed(&[detection(80.0)]), "moved too far");
        // Followed from the regions for two frames, then due: the whole frame.
        let follow = |tracker: &mut FaceTracker| {
            let plan = tracker.plan(&computed);
            let kept = computed.iter().zip(plan).map(|(d, kept)| {
                let (attributes, age) = kept.expect("followed");
                (d.bbox, attributes, age)
            });
            tracker.update(kept, false);
        };
        follow(&mut tracker);
        assert!(tracker.regions().is_some());
        follow(&mut tracker);
        assert_eq!(tracker.regions(), None, "the third frame is searched whole");
        // Two faces, both computed on a whole frame: searched around both.
        frame(&mut tracker, &faces, |_| 40.0);
        assert!(tracker.holds_just_the_followed(&[detection(310.0), detection(5.0)]), "in any order");
        assert_eq!(tracker.regions(), Some(vec![faces[0].bbox, faces[1].bbox]));
        tracker.update([], false);
        assert_eq!(tracker.regions(), None, "nothing followed any more");
    }
}
