//! Facial regions from landmarks, placed along the face's own axes.
//!
//! Every region is written in one frame: the origin halfway between the eye
//! centres, `u` from the subject's right eye towards their left eye and `v`
//! perpendicular to it, downwards, both in inter-ocular distances. Only five
//! anchors fix the frame (the four eye corners and the base of the nose), so
//! the 5-point and the 68-point models give the same regions. The boxes are
//! the landmarks' spans in that frame, averaged over dlib's 68-point output
//! on 123 faces (dlib's examples/faces and johns); padding and the cheek's
//! extent are stated beside each.
//!
//! `side` is the subject's own: their left eye appears on the image's right.

/// The five anchors, in image pixels.
#[derive(Debug, Clone, Copy)]
pub struct Anchors {
    pub right_eye_outer: [f32; 2],
    pub right_eye_inner: [f32; 2],
    pub left_eye_outer: [f32; 2],
    pub left_eye_inner: [f32; 2],
    pub nose_base: [f32; 2],
    /// How much further sideways the nose tip sits than the nose base point,
    /// as a multiple of the base's offset: least squares over the 123 faces
    /// (residual 0.04 inter-ocular distances with the 5-point model's base
    /// point, 0.03 with the 68-point model's point 33). A turned head's tip
    /// swings towards one cheek, which must stay on its side of it.
    pub tip_gain: f32,
}

impl Anchors {
    /// From dlib's 5-point scheme: 0/1 the subject's left eye, outer then
    /// inner corner; 2/3 the right eye's; 4 the base of the nose.
    pub fn from_five(p: &[[f32; 2]]) -> Self {
        Anchors {
            left_eye_outer: p[0],
            left_eye_inner: p[1],
            right_eye_outer: p[2],
            right_eye_inner: p[3],
            nose_base: p[4],
            tip_gain: 1.50,
        }
    }

    /// From the iBUG 68-point scheme (36/39 right eye, 42/45 left, 33 nose base).
    pub fn from_sixty_eight(p: &[[f32; 2]]) -> Self {
        Anchors {
            right_eye_outer: p[36],
            right_eye_inner: p[39],
            left_eye_inner: p[42],
            left_eye_outer: p[45],
            nose_base: p[33],
            tip_gain: 1.38,
        }
    }
}

/// Which side of the face a region is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
    None,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Left => "left",
            Side::Right => "right",
            Side::None => "",
        }
    }
}

/// A region's rectangle in the face frame, drawn for the subject's RIGHT
/// side (negative `u`); the left one is its mirror image. `follow`: the
/// horizontal span moves with the nose base's sideways offset times this, so
/// that cheeks, nose and mouth follow the nose when the head turns (1: the
/// base; [`TIP`]: the tip, which swings further, [`Anchors::tip_gain`]). `v_nose`: the vertical span scales with the nose base's distance
/// below the eyes (the face's height), not only with the eyes' spacing.
struct Shape {
    name: &'static str,
    paired: bool,
    u: [f32; 2],
    v: [f32; 2],
    follow: f32,
    v_nose: bool,
}

/// Landmark spans (mean over 123 faces): right eye u −0.69…−0.31, v −0.06…0.05;
/// right brow u −0.92…−0.20, v −0.35…−0.15; nose base (31–35) u ±0.24 at
/// v 0.68–0.76, its tip (30) at v 0.55; mouth u −0.45…0.49, v 0.97–1.33;
/// the jaw at u −1.10 at the nose's height.
const SHAPES: [Shape; 6] = [
    // The eye and its lids, 0.1 wider each side, 0.1 above and below.
    Shape {
        name: "eye",
        paired: true,
        u: [-0.80, -0.20],
        v: [-0.16, 0.15],
        follow: 0.0,
        v_nose: false,
    },
    // From the lower lid down to half way to the nose tip, the span of the eye.
    Shape {
        name: "under_eye",
        paired: true,
        u: [-0.76, -0.24],
        v: [0.08, 0.42],
        follow: 0.0,
        v_nose: true,
    },
    // Between the nose wing (0.24 outside it, so that a turned head's nose tip
    // stays out of it) and the jaw (0.06 inside it at the mouth's height),
    // from the under-eye's bottom down to the mouth corner's height.
    Shape {
        name: "cheek",
        paired: true,
        u: [-0.98, -0.48],
        v: [0.42, 0.98],
        follow: TIP,
        v_nose: true,
    },
    Shape {
        name: "brow",
        paired: true,
        u: [-0.98, -0.14],
        v: [-0.45, -0.08],
        follow: 0.0,
        v_nose: false,
    },
    // From between the eyes to below the nostrils.
    Shape {
        name: "nose",
        paired: false,
        u: [-0.30, 0.30],
        v: [-0.02, 0.84],
        follow: 1.0,
        v_nose: true,
    },
    Shape {
        name: "mouth",
        paired: false,
        u: [-0.58, 0.58],
        v: [0.90, 1.44],
        follow: 1.0,
        v_nose: true,
    },
];

/// `follow` of a region that moves with the nose tip.
const TIP: f32 = f32::INFINITY;

/// The mean nose base's `v` (landmark 33): the face's height in the frame.
const NOSE_V: f32 = 0.759;

/// Every region this module can place, in the order they are written.
pub fn region_names() -> Vec<&'static str> {
    SHAPES.iter().map(|s| s.name).collect()
}

/// A placed region: a rectangle along the face's axes, and the image-aligned
/// box around it.
#[derive(Debug, Clone, Copy)]
pub struct Placed {
    pub name: &'static str,
    pub side: Side,
    /// The rectangle's four corners in image pixels (top-left, top-right,
    /// bottom-right, bottom-left in the face's frame).
    pub corners: [[f32; 2]; 4],
    /// The face's roll, degrees, clockwise in the image.
    pub angle: f32,
}

impl Placed {
    /// The smallest image-aligned box around the rectangle: x0, y0, x1, y1.
    pub fn bounds(&self) -> [f32; 4] {
        let xs = self.corners.map(|c| c[0]);
        let ys = self.corners.map(|c| c[1]);
        let min = |v: [f32; 4]| v.into_iter().fold(f32::INFINITY, f32::min);
        let max = |v: [f32; 4]| v.into_iter().fold(f32::NEG_INFINITY, f32::max);
        [min(xs), min(ys), max(xs), max(ys)]
    }

    /// The rectangle's size along the face's axes, pixels.
    pub fn size(&self) -> [f32; 2] {
        let d = |a: [f32; 2], b: [f32; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
        [
            d(self.corners[0], self.corners[1]),
            d(self.corners[1], self.corners[2]),
        ]
    }
}

/// The face frame the anchors fix.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    origin: [f32; 2],
    ex: [f32; 2],
    ey: [f32; 2],
    /// The inter-ocular distance, pixels.
    scale: f32,
    /// The nose base in frame units.
    nose: [f32; 2],
    tip_gain: f32,
}

fn mid(a: [f32; 2], b: [f32; 2]) -> [f32; 2] {
    [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0]
}

impl Frame {
    pub fn new(a: &Anchors) -> Self {
        let right = mid(a.right_eye_outer, a.right_eye_inner);
        let left = mid(a.left_eye_outer, a.left_eye_inner);
        let origin = mid(left, right);
        let (dx, dy) = (left[0] - right[0], left[1] - right[1]);
        let scale = (dx * dx + dy * dy).sqrt().max(1.0);
        let ex = [dx / scale, dy / scale];
        let ey = [-ex[1], ex[0]];
        let mut frame = Frame {
            origin,
            ex,
            ey,
            scale,
            nose: [0.0, NOSE_V],
            tip_gain: a.tip_gain,
        };
        frame.nose = frame.to_frame(a.nose_base);
        frame
    }

    /// The inter-ocular distance, pixels.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// The roll, degrees clockwise.
    pub fn angle(&self) -> f32 {
        self.ex[1].atan2(self.ex[0]).to_degrees()
    }

    pub fn to_frame(&self, p: [f32; 2]) -> [f32; 2] {
        let (x, y) = (p[0] - self.origin[0], p[1] - self.origin[1]);
        [
            (x * self.ex[0] + y * self.ex[1]) / self.scale,
            (x * self.ey[0] + y * self.ey[1]) / self.scale,
        ]
    }

    pub fn to_image(&self, q: [f32; 2]) -> [f32; 2] {
        let (u, v) = (q[0] * self.scale, q[1] * self.scale);
        [
            self.origin[0] + u * self.ex[0] + v * self.ey[0],
            self.origin[1] + u * self.ex[1] + v * self.ey[1],
        ]
    }

    /// The regions named in `wanted` (all when empty), each side of a pair.
    pub fn regions(&self, wanted: &[String]) -> Vec<Placed> {
        // The face's height relative to the mean, bounded so that a bad nose
        // point cannot fold a region over.
        let tall = (self.nose[1] / NOSE_V).clamp(0.7, 1.4);
        let mut out = Vec::new();
        for s in SHAPES
            .iter()
            .filter(|s| wanted.is_empty() || wanted.iter().any(|w| w == s.name))
        {
            let sides: &[(Side, f32)] = if s.paired {
                &[(Side::Right, 1.0), (Side::Left, -1.0)]
            } else {
                &[(Side::None, 1.0)]
            };
            for &(side, mirror) in sides {
                let gain = if s.follow == TIP {
                    self.tip_gain
                } else {
                    s.follow
                };
                let shift = gain * self.nose[0];
                let (u0, u1) = (s.u[0] * mirror + shift, s.u[1] * mirror + shift);
                let (u0, u1) = (u0.min(u1), u0.max(u1));
                let k = if s.v_nose { tall } else { 1.0 };
                let (v0, v1) = (s.v[0] * k, s.v[1] * k);
                out.push(Placed {
                    name: s.name,
                    side,
                    corners: [[u0, v0], [u1, v0], [u1, v1], [u0, v1]].map(|q| self.to_image(q)),
                    angle: self.angle(),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upright() -> Anchors {
        // Eyes 100 px apart at y = 100, the subject's right eye on the image's left.
        Anchors {
            right_eye_outer: [60.0, 100.0],
            right_eye_inner: [90.0, 100.0],
            left_eye_inner: [110.0, 100.0],
            left_eye_outer: [140.0, 100.0],
            nose_base: [100.0, 176.0],
            tip_gain: 1.5,
        }
    }

    #[test]
    fn the_subjects_left_regions_are_on_the_images_right() {
        let frame = Frame::new(&upright());
        let regions = frame.regions(&[]);
        let find = |n: &str, s: Side| regions.iter().find(|r| r.name == n && r.side == s).unwrap();
        let left = find("eye", Side::Left).bounds();
        let right = find("eye", Side::Right).bounds();
        assert!(left[0] > 100.0 && right[2] < 100.0, "{left:?} {right:?}");
        // The left eye's centre (125, 100) is inside its box.
        assert!(left[0] < 125.0 && 125.0 < left[2] && left[1] < 100.0 && 100.0 < left[3]);
        for side in [Side::Left, Side::Right] {
            let under = find("under_eye", side).bounds();
            let cheek = find("cheek", side).bounds();
            assert!(under[1] > 100.0 && cheek[1] > 100.0, "below the eyes");
            // On its own side of the nose.
            let outside = |b: [f32; 4]| {
                if side == Side::Left {
                    b[0] > 100.0
                } else {
                    b[2] < 100.0
                }
            };
            assert!(outside(cheek), "{side:?} cheek {cheek:?}");
        }
        assert_eq!(regions.len(), 10);
    }

    #[test]
    fn a_tilted_face_keeps_its_regions_under_its_eyes() {
        let a = upright();
        let turn = |p: [f32; 2]| {
            let (c, s) = (20f32.to_radians().cos(), 20f32.to_radians().sin());
            let (x, y) = (p[0] - 100.0, p[1] - 100.0);
            [100.0 + c * x - s * y, 100.0 + s * x + c * y]
        };
        let tilted = Anchors {
            right_eye_outer: turn(a.right_eye_outer),
            right_eye_inner: turn(a.right_eye_inner),
            left_eye_inner: turn(a.left_eye_inner),
            left_eye_outer: turn(a.left_eye_outer),
            nose_base: turn(a.nose_base),
            tip_gain: a.tip_gain,
        };
        let frame = Frame::new(&tilted);
        assert!((frame.angle() - 20.0).abs() < 1e-3);
        let straight = Frame::new(&a).regions(&["under_eye".into()]);
        for (r, s) in frame.regions(&["under_eye".into()]).iter().zip(&straight) {
            for (c, d) in r.corners.iter().zip(s.corners) {
                let d = turn(d);
                assert!((c[0] - d[0]).abs() < 1e-3 && (c[1] - d[1]).abs() < 1e-3);
            }
        }
    }
}
