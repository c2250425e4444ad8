//! Hard negative class mining (Sohn 2016, §3.2), for `--mine-classes C`
//! above the `N` classes of a tuple.
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Tensor};

use crate::error::Result;
use crate::model::Net;

/// Hard negative class mining (Sohn 2016, §3.2): from `C` candidate classes
/// per tuple, start from a random one and greedily add the class that most
/// violates the N-pair constraint against those already chosen, until `N`.
/// Returns the chosen rows (anchors then positives) and their labels.
pub(super) fn mine(
    net: &Net,
    x: &Tensor,
    labels: &Tensor,
    n: usize,
    c: usize,
    tuples: usize,
    seed: u64,
) -> Result<(Tensor, Tensor, Tensor)> {
    let tc = (c * tuples) as i64;
    let emb = tch::no_grad(|| net.forward_t(x, false)).to_device(Device::Cpu);
    let (fa, fp) = (emb.narrow(0, 0, tc), emb.narrow(0, tc, tc));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rows: Vec<i64> = Vec::with_capacity(n * tuples);
    for t in 0..tuples {
        let off = (t * c) as i64;
        let sim = fa
            .narrow(0, off, c as i64)
            .matmul(&fp.narrow(0, off, c as i64).transpose(0, 1));
        let sim: Vec<f32> = Vec::<f32>::try_from(&sim.contiguous().view([-1]))?;
        let v = |i: usize, j: usize| sim[i * c + j] - sim[i * c + i];
        let mut chosen = vec![rng.random_range(0..c)];
        let mut score: Vec<f32> = (0..c)
            .map(|j| v(chosen[0], j).max(v(j, chosen[0])))
            .collect();
        while chosen.len() < n {
            let next = (0..c)
                .filter(|j| !chosen.contains(j))
                .max_by(|&a, &b| score[a].total_cmp(&score[b]))
                .unwrap_or(0);
            chosen.push(next);
            for (j, sc) in score.iter_mut().enumerate() {
                *sc = sc.max(v(next, j).max(v(j, next)));
            }
        }
        rows.extend(chosen.iter().map(|&k| off + k as i64));
    }
    let idx = Tensor::from_slice(&rows);
    let both = Tensor::cat(&[&idx, &(&idx + tc)], 0).to_device(x.device());
    Ok((
        x.index_select(0, &both),
        labels.index_select(0, &idx.to_device(labels.device())),
        both,
    ))
}
