//! dlib's shape predictor (Kazemi & Sullivan's ensemble of regression trees,
//! dlib/image_processing/shape_predictor.h), read from its `.dat` file and
//! run in plain Rust. It gives the same points as dlib: the test in
//! `tests/regions.rs` pins them against dlib's own output.
//!
//! A prediction starts from the mean shape placed in the face's box and
//! refines it through a cascade (15 levels in dlib's models). Each level
//! reads a few hundred pixel intensities at points anchored to the current
//! shape (moved by the similarity transform from the mean shape to the
//! current one, so a tilted face is read along its own axes) and adds the
//! leaves of 500 depth-4 trees that split on pixel differences.
use super::dlib_serial::{FormatError, Reader};

/// One split of a regression tree: go left when
/// `pixel[idx1] - pixel[idx2] > thresh`.
struct Split {
    idx1: u32,
    idx2: u32,
    thresh: f32,
}

struct Tree {
    splits: Vec<Split>,
    /// One shape update (2·parts values) per leaf.
    leaves: Vec<Vec<f32>>,
}

struct Level {
    trees: Vec<Tree>,
    /// The landmark each feature pixel is anchored to.
    anchors: Vec<u32>,
    /// The feature pixels' offsets from their anchors, in mean-shape units.
    deltas: Vec<[f32; 2]>,
}

/// A loaded shape predictor.
pub struct ShapePredictor {
    /// The mean shape, x0,y0,x1,y1,… in box units ((0,0) = top left, (1,1) = bottom right).
    initial: Vec<f32>,
    levels: Vec<Level>,
}

/// A grey image: intensities as dlib computes them for an RGB pixel,
/// (r+g+b)/3 rounded down.
pub struct Gray<'a> {
    pub pixels: &'a [u8],
    pub width: u32,
    pub height: u32,
}

/// A face's box in pixels, dlib's convention: `right` and `bottom` inclusive.
#[derive(Debug, Clone, Copy)]
pub struct BoxPx {
    pub left: f32,
    pub top: f32,
    pub right: f32,
    pub bottom: f32,
}

impl ShapePredictor {
    /// Parses a `.dat` file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(bytes);
        let version = r.int(4)?;
        if version != 1 {
            return r.fail(format!(
                "shape predictor version {version}; this reader knows version 1"
            ));
        }
        let initial = r.float_matrix()?;
        if initial.is_empty() || initial.len() % 2 != 0 {
            return r.fail(format!(
                "a mean shape of {} values, not 2 per point",
                initial.len()
            ));
        }
        let parts = initial.len() / 2;
        let n_levels = r.length()?;
        let mut forests = Vec::with_capacity(n_levels);
        for _ in 0..n_levels {
            let n_trees = r.length()?;
            let mut trees = Vec::with_capacity(n_trees);
            for _ in 0..n_trees {
                let n_splits = r.length()?;
                let mut splits = Vec::with_capacity(n_splits);
                for _ in 0..n_splits {
                    let idx1 = r.ulong()?;
                    let idx2 = r.ulong()?;
                    let thresh = r.float()?;
                    splits.push((idx1, idx2, thresh));
                }
                let n_leaves = r.length()?;
                if n_leaves != n_splits + 1 {
                    return r.fail(format!("a tree of {n_splits} splits has {n_leaves} leaves"));
                }
                let mut leaves = Vec::with_capacity(n_leaves);
                for _ in 0..n_leaves {
                    let leaf = r.float_matrix()?;
                    if leaf.len() != 2 * parts {
                        return r.fail(format!(
                            "a leaf of {} values for {parts} points",
                            leaf.len()
                        ));
                    }
                    leaves.push(leaf);
                }
                trees.push((splits, leaves));
            }
            forests.push(trees);
        }
        let read_anchors = |r: &mut Reader| -> Result<Vec<Vec<u32>>, FormatError> {
            let n = r.length()?;
            (0..n)
                .map(|_| {
                    let m = r.length()?;
                    (0..m)
                        .map(|_| {
                            let a = r.ulong()?;
                            if a as usize >= parts {
                                return r.fail(format!("anchor {a} of {parts} points"));
                            }
                            Ok(a as u32)
                        })
                        .collect()
                })
                .collect()
        };
        let anchors = read_anchors(&mut r)?;
        let n = r.length()?;
        let mut deltas = Vec::with_capacity(n);
        for _ in 0..n {
            let m = r.length()?;
            let mut level = Vec::with_capacity(m);
            for _ in 0..m {
                level.push([r.float()?, r.float()?]);
            }
            deltas.push(level);
        }
        if anchors.len() != n_levels || deltas.len() != n_levels {
            return r.fail("the cascade's trees, anchors and deltas disagree in length");
        }
        if !r.at_end() {
            return r.fail("bytes left after the model (not a shape predictor?)");
        }
        let mut levels = Vec::with_capacity(n_levels);
        for ((trees, anchors), deltas) in forests.into_iter().zip(anchors).zip(deltas) {
            if anchors.len() != deltas.len() {
                return r.fail("a level's anchors and deltas disagree in length");
            }
            let pixels = anchors.len() as u64;
            let mut checked = Vec::with_capacity(trees.len());
            for (splits, leaves) in trees {
                let splits = splits
                    .into_iter()
                    .map(|(idx1, idx2, thresh)| {
                        if idx1 >= pixels || idx2 >= pixels {
                            return r
                                .fail(format!("a split reads pixel {idx1}/{idx2} of {pixels}"));
                        }
                        Ok(Split {
                            idx1: idx1 as u32,
                            idx2: idx2 as u32,
                            thresh,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                checked.push(Tree { splits, leaves });
            }
            levels.push(Level {
                trees: checked,
                anchors,
                deltas,
            });
        }
        Ok(ShapePredictor { initial, levels })
    }

    /// How many landmarks it places.
    pub fn parts(&self) -> usize {
        self.initial.len() / 2
    }

    /// The landmarks of the face in `rect`, in image pixels.
    pub fn predict(&self, image: &Gray, rect: BoxPx) -> Vec<[f32; 2]> {
        let mut shape = self.initial.clone();
        let mut features = Vec::new();
        let (sx, sy) = (rect.right - rect.left, rect.bottom - rect.top);
        for level in &self.levels {
            // The 2x2 part of the similarity transform from the mean shape to
            // the current one; for points in 2-D Umeyama's solution is the
            // closed form [[a, -b], [b, a]].
            let [a, b] = similarity(&self.initial, &shape);
            features.clear();
            features.extend(level.anchors.iter().zip(&level.deltas).map(|(&anchor, d)| {
                let k = 2 * anchor as usize;
                let u = a * d[0] - b * d[1] + shape[k];
                let v = b * d[0] + a * d[1] + shape[k + 1];
                // dlib converts to integer pixels with floor(x + 0.5).
                let x = (rect.left + u * sx + 0.5).floor();
                let y = (rect.top + v * sy + 0.5).floor();
                if x >= 0.0 && y >= 0.0 && x < image.width as f32 && y < image.height as f32 {
                    f32::from(image.pixels[y as usize * image.width as usize + x as usize])
                } else {
                    0.0
                }
            }));
            for tree in &level.trees {
                let mut i = 0;
                while i < tree.splits.len() {
                    let s = &tree.splits[i];
                    i = if features[s.idx1 as usize] - features[s.idx2 as usize] > s.thresh {
                        2 * i + 1
                    } else {
                        2 * i + 2
                    };
                }
                for (v, d) in shape.iter_mut().zip(&tree.leaves[i - tree.splits.len()]) {
                    *v += d;
                }
            }
        }
        shape
            .chunks_exact(2)
            .map(|p| [rect.left + p[0] * sx, rect.top + p[1] * sy])
            .collect()
    }
}

/// `[a, b]` of the least-squares similarity `[[a, -b], [b, a]]` (plus a
/// translation) that takes the points `from` onto `to`.
fn similarity(from: &[f32], to: &[f32]) -> [f32; 2] {
    let n = (from.len() / 2) as f32;
    if n < 2.0 {
        return [1.0, 0.0];
    }
    let mean = |s: &[f32], o: usize| s.iter().skip(o).step_by(2).sum::<f32>() / n;
    let (fx, fy, tx, ty) = (mean(from, 0), mean(from, 1), mean(to, 0), mean(to, 1));
    let (mut dot, mut cross, mut norm) = (0f32, 0f32, 0f32);
    for (p, q) in from.chunks_exact(2).zip(to.chunks_exact(2)) {
        let (ax, ay, bx, by) = (p[0] - fx, p[1] - fy, q[0] - tx, q[1] - ty);
        dot += ax * bx + ay * by;
        cross += ax * by - ay * bx;
        norm += ax * ax + ay * ay;
    }
    if norm == 0.0 {
        return [1.0, 0.0];
    }
    [dot / norm, cross / norm]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_similarity_of_a_rotated_scaled_shape_is_found() {
        let from = [0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        // Rotate by 30°, scale by 2, shift by (5, 7).
        let (c, s) = (
            2.0 * 30f32.to_radians().cos(),
            2.0 * 30f32.to_radians().sin(),
        );
        let to: Vec<f32> = from
            .chunks_exact(2)
            .flat_map(|p| [c * p[0] - s * p[1] + 5.0, s * p[0] + c * p[1] + 7.0])
            .collect();
        let [a, b] = similarity(&from, &to);
        assert!((a - c).abs() < 1e-5 && (b - s).abs() < 1e-5, "{a} {b}");
    }

    #[test]
    fn a_truncated_file_is_an_error_not_a_panic() {
        // version 1, a 1x2 mean shape, then nothing.
        let bytes = [0x01, 0x01, 0x81, 0x02, 0x81, 0x01, 0x00, 0x00, 0x00, 0x00];
        let e = ShapePredictor::from_bytes(&bytes).err().expect("truncated");
        assert!(e.to_string().contains("ends early"), "{e}");
        assert!(ShapePredictor::from_bytes(&[0x01, 0x02]).is_err());
    }
}
