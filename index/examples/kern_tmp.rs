use anndists::dist::{DistDot, DistL2, Distance};
use std::time::Instant;
fn main() {
    for dim in [64usize, 128, 784] {
        let n = 20000;
        let a: Vec<f32> = (0..n * dim).map(|i| ((i * 2654435761usize) % 1000) as f32 / 1000.0 / (dim as f32).sqrt()).collect();
        let q: Vec<f32> = a[..dim].to_vec();
        let reps = 50;
        let mut s = 0.0f32;
        let t = Instant::now();
        for _ in 0..reps { for r in a.chunks_exact(dim) { s += likeness_index::distance::dot(&q, r); } }
        let ours = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for _ in 0..reps { for r in a.chunks_exact(dim) { s += likeness_index::distance::dot_portable(&q, r); } }
        let port = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for _ in 0..reps { for r in a.chunks_exact(dim) { s += DistDot.eval(&q, r); } }
        let theirs = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for _ in 0..reps { for r in a.chunks_exact(dim) { s += likeness_index::distance::l2_sq(&q, r); } }
        let ol2 = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for _ in 0..reps { for r in a.chunks_exact(dim) { s += DistL2.eval(&q, r); } }
        let tl2 = t.elapsed().as_secs_f64();
        let calls = (reps * n) as f64;
        println!("dim {dim}: ns/call dot ours(avx2) {:.1} portable {:.1} anndists {:.1} | l2 ours {:.1} anndists {:.1}  ({s})",
            ours / calls * 1e9, port / calls * 1e9, theirs / calls * 1e9, ol2 / calls * 1e9, tl2 / calls * 1e9);
    }
}
