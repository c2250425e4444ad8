//! The losses of the trainer, on unnormalised embeddings.
//!
//! Batches hold `T` independent tuples of `N` classes: `anchors` and
//! `positives` are `[T·N, d]`, tuple `t` in rows `t·N .. (t+1)·N`, and row `i`
//! of `positives` shares its class with row `i` of `anchors`.
//!
//! - **N-pair-mc** (Sohn 2016, eq. 3): for each anchor `i` of a tuple,
//!   `log(1 + Σ_{j≠i} exp(f_iᵀf_j⁺ − f_iᵀf_i⁺))`, which is the softmax
//!   cross-entropy of row `i` of `f·f⁺ᵀ` with target `i`; averaged over the
//!   `N` anchors, then over the `T` tuples.
//! - **N-pair-ovo** (eq. 4): `Σ_{j≠i} log(1 + exp(f_iᵀf_j⁺ − f_iᵀf_i⁺))`, one
//!   binary term per negative, averaged over anchors and tuples.
//! - **Triplet** (baseline): batch-hard mining (Hermans et al. 2017) inside the
//!   same batch of `2·T·N` embeddings: for each one, its farthest same-class and
//!   nearest other-class embedding, `max(0, d_ap − d_an + margin)` with
//!   Euclidean distances, averaged.
//!
//! All three add the L2 penalty on embedding norms of TensorFlow's
//! `npairs_loss`: `λ · ¼ · (mean‖f‖² + mean‖f⁺‖²)`.
use tch::{Kind, Tensor};

use crate::error::{Error, Result};

pub use likeness_app::settings::LossKind;

/// Loss settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LossConfig {
    pub kind: LossKind,
    /// λ of the L2 penalty on embedding norms (TensorFlow's default: 0.002).
    pub l2_reg: f64,
    /// Margin of the triplet loss.
    pub margin: f64,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig {
            kind: LossKind::NpairMc,
            l2_reg: 0.002,
            margin: 1.0,
        }
    }
}

fn check(anchors: &Tensor, positives: &Tensor, tuples: i64) -> Result<(i64, i64)> {
    let (a, p) = (anchors.size(), positives.size());
    if a.len() != 2 || a != p {
        return Err(Error::Invalid(format!(
            "anchors {a:?} and positives {p:?} must both be [T*N, d]"
        )));
    }
    if tuples < 1 || a[0] % tuples != 0 || a[0] / tuples < 2 {
        return Err(Error::Invalid(format!(
            "{} anchors do not split into {tuples} tuples of at least 2 classes",
            a[0]
        )));
    }
    Ok((a[0] / tuples, a[1]))
}

/// `λ · ¼ · (mean‖f‖² + mean‖f⁺‖²)`.
pub fn l2_penalty(anchors: &Tensor, positives: &Tensor, l2_reg: f64) -> Tensor {
    let sq = |t: &Tensor| {
        t.square()
            .sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
            .mean(Kind::Float)
    };
    (sq(anchors) + sq(positives)) * (0.25 * l2_reg)
}

/// The loss of a batch of `tuples` tuples (a scalar tensor with gradients).
/// `labels` (`[T·N]`, int64) are the classes of the anchor rows; only the
/// triplet loss reads them (the same class may recur in different tuples).
pub fn loss(
    cfg: &LossConfig,
    anchors: &Tensor,
    positives: &Tensor,
    labels: &Tensor,
    tuples: i64,
) -> Result<Tensor> {
    let (n, d) = check(anchors, positives, tuples)?;
    if labels.size() != [tuples * n] {
        return Err(Error::Invalid(format!(
            "labels {:?} must be [{}], one per anchor",
            labels.size(),
            tuples * n
        )));
    }
    let main = match cfg.kind {
        LossKind::NpairMc => {
            let logits = similarity(anchors, positives, tuples, n, d);
            let targets = Tensor::arange(n, (Kind::Int64, anchors.device())).repeat([tuples]);
            logits
                .view([tuples * n, n])
                .cross_entropy_for_logits(&targets)
        }
        LossKind::NpairOvo => {
            let logits = similarity(anchors, positives, tuples, n, d);
            // f_iᵀf_j⁺ − f_iᵀf_i⁺ for every j; the diagonal (j = i) is masked out.
            let diag = logits.diagonal(0, 1, 2).unsqueeze(2);
            let margins = (&logits - diag).softplus();
            let off_diag = Tensor::ones([n, n], (Kind::Float, anchors.device()))
                - Tensor::eye(n, (Kind::Float, anchors.device()));
            (margins * off_diag)
                .sum_dim_intlist([2i64].as_slice(), false, Kind::Float)
                .mean(Kind::Float)
        }
        LossKind::Triplet => batch_hard_triplet(anchors, positives, labels, cfg.margin),
    };
    Ok(main + l2_penalty(anchors, positives, cfg.l2_reg))
}

/// `[T, N, N]`: `f·f⁺ᵀ` within each tuple.
fn similarity(anchors: &Tensor, positives: &Tensor, tuples: i64, n: i64, d: i64) -> Tensor {
    let a = anchors.view([tuples, n, d]);
    let p = positives.view([tuples, n, d]);
    a.matmul(&p.transpose(1, 2))
}

fn batch_hard_triplet(
    anchors: &Tensor,
    positives: &Tensor,
    labels: &Tensor,
    margin: f64,
) -> Tensor {
    let device = anchors.device();
    let emb = Tensor::cat(&[anchors, positives], 0);
    let ids = labels.repeat([2]);
    let same = ids.unsqueeze(1).eq_tensor(&ids.unsqueeze(0));
    let sq = emb
        .square()
        .sum_dim_intlist([1i64].as_slice(), true, Kind::Float);
    let d2 = (&sq + sq.transpose(0, 1) - emb.matmul(&emb.transpose(0, 1)) * 2.0).clamp_min(0.0);
    let dist = (d2 + 1e-12).sqrt();
    let eye = Tensor::eye(emb.size()[0], (Kind::Bool, device));
    let pos_mask = same.logical_and(&eye.logical_not());
    let hardest_pos = dist
        .where_self(&pos_mask, &Tensor::zeros_like(&dist))
        .amax([1i64].as_slice(), false);
    let big = dist.max() + 1.0;
    let hardest_neg = dist
        .where_self(&same.logical_not(), &big)
        .amin([1i64].as_slice(), false);
    (hardest_pos - hardest_neg + margin)
        .relu()
        .mean(Kind::Float)
}
