//! Metrics and distance kernels.
//!
//! Two metrics are supported:
//!
//! * [`Metric::Cosine`] (the default): vectors are L2-normalised once by
//!   [`Metric::preprocess`] (at build time for the gallery, per query at
//!   search time); the distance is then `1 - <a, b>`, in `[0, 2]`.
//! * [`Metric::L2`]: the *squared* Euclidean distance `|a - b|²` (monotone in
//!   the Euclidean distance, so neighbours are the same; faiss reports the
//!   same quantity).
//!
//! The kernels are plain Rust loops over 16-wide chunks with independent
//! accumulators, which LLVM vectorises; on x86-64 AVX-512F or AVX2+FMA
//! kernels are chosen at run time. The tests check them against a plain
//! scalar loop and against each other.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How vectors are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Cosine distance `1 - cos(a, b)`; vectors are normalised once, then
    /// compared by inner product.
    #[default]
    Cosine,
    /// Squared Euclidean distance.
    L2,
}

impl Metric {
    /// The name used on the command line and in `manifest.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::L2 => "l2",
        }
    }

    /// Validates `data` (rows of `dim` floats) and brings it into the form the
    /// metric searches: every value must be finite; for cosine every row is
    /// scaled to unit length (a zero row is an error, its direction is
    /// undefined).
    pub fn preprocess(self, data: &mut [f32], dim: usize) -> Result<()> {
        check_shape(data.len(), dim)?;
        self.check_values(data, dim)?;
        self.normalize_rows(data, dim)
    }

    /// Checks the values of `data` (whole rows of `dim`) for this metric:
    /// all finite, and for l2 no row of [`MAX_L2_LENGTH`] or longer.
    pub fn check_values(self, data: &[f32], dim: usize) -> Result<()> {
        check_finite(data, dim)?;
        if self == Metric::L2 {
            check_l2_length(data, dim)?;
        }
        Ok(())
    }

    /// The normalisation step of [`Metric::preprocess`] alone, for rows
    /// already checked (shape, finite values): cosine normalises each row
    /// (a zero row is an error), l2 leaves them.
    pub(crate) fn normalize_rows(self, data: &mut [f32], dim: usize) -> Result<()> {
        if self == Metric::Cosine {
            for (row, v) in data.chunks_exact_mut(dim.max(1)).enumerate() {
                normalize(v).ok_or(Error::ZeroVector { row })?;
            }
        }
        Ok(())
    }

    /// Distance between two preprocessed vectors of equal length. Smaller is
    /// closer.
    #[inline]
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        let k = kernels();
        match self {
            Metric::Cosine => 1.0 - (k.dot)(a, b),
            Metric::L2 => (k.l2_sq)(a, b),
        }
    }

    /// The four-at-once kernel for this metric (one query against four
    /// vectors, the query loaded once per step), resolved once. Graph search
    /// uses it for the neighbours of a node, as faiss does; see
    /// [`DistanceFn4`] for its `bound`.
    pub fn kernel4(self) -> DistanceFn4 {
        let k = kernels();
        match self {
            Metric::Cosine => k.cosine4,
            Metric::L2 => k.l2_sq4,
        }
    }

    /// The kernel for this metric as a plain function pointer, resolved once
    /// (CPU feature detection) so hot loops pay no dispatch.
    pub fn kernel(self) -> DistanceFn {
        let k = kernels();
        match self {
            Metric::Cosine => k.cosine,
            Metric::L2 => k.l2_sq,
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Metric {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cosine" => Ok(Metric::Cosine),
            "l2" => Ok(Metric::L2),
            other => Err(Error::param("metric", other, "expected `cosine` or `l2`")),
        }
    }
}

/// A distance kernel: two slices of equal length, smaller is closer.
pub type DistanceFn = fn(&[f32], &[f32]) -> f32;

/// Distances from one query to four vectors of its length, given a `bound`
/// above which a distance is of no interest: a kernel may then stop early
/// and report `f32::INFINITY` for all four when every one of them is known
/// to exceed `bound`. Distances at or below `bound` are always exact (the
/// same value as without a bound). With `bound = f32::INFINITY` all four are
/// exact.
///
/// Squared L2 stops early: its partial sums only grow, so once all four
/// exceed the bound (checked every 128 dimensions) the rest of the vectors
/// need not be read, which on large vectors saves most of the memory traffic
/// of a graph search. Cosine (an inner product) has no such bound.
pub type DistanceFn4 = fn(&[f32], [&[f32]; 4], f32) -> [f32; 4];

/// Cache lines of a vector prefetched ahead of its distance computation:
/// the floats a [`DistanceFn4`] kernel reads before its first early-stop
/// check (measured on fashion-mnist-784: prefetching whole vectors is
/// slower, the hardware prefetcher streams the rest).
pub(crate) const PREFETCH_LINES: usize = 128 * 4 / 64;

/// Hints the CPU to load the cache line holding the start of `data`. Only a
/// hint: it never faults and changes no state visible to the program.
#[inline(always)]
pub(crate) fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` is available on every x86-64 CPU (SSE) and is
    // only a hint; the address is that of a live slice.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(data.as_ptr().cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// Hints the CPU to load the start of `v` (its first [`PREFETCH_LINES`]).
#[inline]
pub(crate) fn prefetch_vector(v: &[f32]) {
    for line in v.chunks(16).take(PREFETCH_LINES) {
        prefetch(line);
    }
}

/// Distances from `q` to the vectors of `ids` into `out`, four at a time
/// with `kernel` (a last, partial group is padded with its first item), so
/// every distance of a search comes from the same kernel; the next group's
/// vectors are prefetched while one is computed. Distances above `bound` may
/// come back as infinity (see [`DistanceFn4`]). `vector` looks an id up (the
/// search checks ids read from a mapped file; the builder's are its own).
#[inline]
pub(crate) fn distances4<'v, E>(
    q: &[f32],
    ids: &[u32],
    bound: f32,
    kernel: DistanceFn4,
    vector: impl Fn(u32) -> std::result::Result<&'v [f32], E>,
    out: &mut Vec<f32>,
) -> std::result::Result<(), E> {
    out.clear();
    let mut groups = ids.chunks(4).peekable();
    while let Some(group) = groups.next() {
        if let Some(next) = groups.peek() {
            for &j in *next {
                if let Ok(v) = vector(j) {
                    prefetch_vector(v);
                }
            }
        }
        let first = vector(group[0])?;
        let mut v = [first; 4];
        for (slot, &j) in v.iter_mut().zip(group).skip(1) {
            *slot = vector(j)?;
        }
        let d = kernel(q, v, bound);
        out.extend_from_slice(&d[..group.len()]);
    }
    Ok(())
}

struct Kernels {
    dot: DistanceFn,
    l2_sq: DistanceFn,
    cosine: DistanceFn,
    l2_sq4: DistanceFn4,
    cosine4: DistanceFn4,
}

fn kernels() -> &'static Kernels {
    static K: OnceLock<Kernels> = OnceLock::new();
    K.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Kernels {
                dot: avx512::dot,
                l2_sq: avx512::l2_sq,
                cosine: avx512::cosine,
                l2_sq4: avx512::l2_sq4,
                cosine4: avx512::cosine4,
            };
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Kernels {
                dot: avx2::dot,
                l2_sq: avx2::l2_sq,
                cosine: avx2::cosine,
                l2_sq4: avx2::l2_sq4,
                cosine4: avx2::cosine4,
            };
        }
        Kernels {
            dot: dot_portable,
            l2_sq: l2_sq_portable,
            cosine: |a, b| 1.0 - dot_portable(a, b),
            l2_sq4: |q, v, _| v.map(|x| l2_sq_portable(q, x)),
            cosine4: |q, v, _| v.map(|x| 1.0 - dot_portable(q, x)),
        }
    })
}

/// Inner product `<a, b>` (best kernel for this CPU).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    (kernels().dot)(a, b)
}

/// Squared Euclidean distance `|a - b|²` (best kernel for this CPU).
#[inline]
pub fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    (kernels().l2_sq)(a, b)
}

const LANES: usize = 16;

#[inline(always)]
fn dot_body(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        let (x, y) = (as_lanes(x), as_lanes(y));
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    reduce(acc) + tail
}

#[inline(always)]
fn l2_sq_body(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        let (x, y) = (as_lanes(x), as_lanes(y));
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        let d = x - y;
        tail += d * d;
    }
    reduce(acc) + tail
}

/// A `chunks_exact(LANES)` chunk as a fixed-size array, so the loops over
/// it have no bounds checks and vectorise.
#[inline(always)]
fn as_lanes(c: &[f32]) -> &[f32; LANES] {
    c.try_into().unwrap_or(&[0.0; LANES])
}

#[inline(always)]
fn reduce(acc: [f32; LANES]) -> f32 {
    // Fold the upper half onto the lower half, mirroring how SIMD registers
    // are summed; the order is fixed, so results are reproducible.
    let mut v = [0.0f32; 8];
    for i in 0..8 {
        v[i] = acc[i] + acc[i + 8];
    }
    let mut w = [0.0f32; 4];
    for i in 0..4 {
        w[i] = v[i] + v[i + 4];
    }
    (w[0] + w[2]) + (w[1] + w[3])
}

/// Portable inner product (auto-vectorised to the target's baseline SIMD).
pub fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    dot_body(a, b)
}

/// Portable squared Euclidean distance.
pub fn l2_sq_portable(a: &[f32], b: &[f32]) -> f32 {
    l2_sq_body(a, b)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! AVX2+FMA kernels: four independent 8-lane accumulators (32 floats per
    //! step) hide the FMA latency. Only reachable after run-time detection
    //! in [`super::kernels`].

    use std::arch::x86_64::*;

    /// Horizontal sum of the four accumulators.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(a: __m256, b: __m256, c: __m256, d: __m256) -> f32 {
        let s = _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d));
        let lo = _mm256_castps256_ps128(s);
        let hi = _mm256_extractf128_ps(s, 1);
        let q = _mm_add_ps(lo, hi);
        let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
        let q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
        _mm_cvtss_f32(q)
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut ca = a.chunks_exact(32);
        let mut cb = b.chunks_exact(32);
        for (x, y) in (&mut ca).zip(&mut cb) {
            for (j, acc) in acc.iter_mut().enumerate() {
                // SAFETY: `x` and `y` hold exactly 32 floats; lanes
                // 8j..8j+8 are in bounds for j < 4; loadu has no alignment
                // requirement.
                let (vx, vy) = unsafe {
                    (
                        _mm256_loadu_ps(x.as_ptr().add(8 * j)),
                        _mm256_loadu_ps(y.as_ptr().add(8 * j)),
                    )
                };
                *acc = _mm256_fmadd_ps(vx, vy, *acc);
            }
        }
        // SAFETY: `hsum` needs avx2 and fma, which this function's own
        // `target_feature` (checked by its callers) already requires.
        let mut s = unsafe { hsum(acc[0], acc[1], acc[2], acc[3]) };
        for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
            s += x * y;
        }
        s
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn l2_sq_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut ca = a.chunks_exact(32);
        let mut cb = b.chunks_exact(32);
        for (x, y) in (&mut ca).zip(&mut cb) {
            for (j, acc) in acc.iter_mut().enumerate() {
                // SAFETY: as in `dot_avx2`.
                let (vx, vy) = unsafe {
                    (
                        _mm256_loadu_ps(x.as_ptr().add(8 * j)),
                        _mm256_loadu_ps(y.as_ptr().add(8 * j)),
                    )
                };
                let d = _mm256_sub_ps(vx, vy);
                *acc = _mm256_fmadd_ps(d, d, *acc);
            }
        }
        // SAFETY: `hsum` needs avx2 and fma, which this function's own
        // `target_feature` (checked by its callers) already requires.
        let mut s = unsafe { hsum(acc[0], acc[1], acc[2], acc[3]) };
        for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
            let d = x - y;
            s += d * d;
        }
        s
    }

    /// Sum of the 8 lanes.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum1(s: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(s);
        let hi = _mm256_extractf128_ps(s, 1);
        let q = _mm_add_ps(lo, hi);
        let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
        let q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
        _mm_cvtss_f32(q)
    }

    /// Dimensions between two checks of the early stop (graph search
    /// prefetches as many of each vector ahead, see `hnsw/search.rs`).
    pub(crate) const CHECK_EVERY: usize = 128;

    /// One query against four vectors: each step loads 16 floats of the
    /// query once and of every vector once, into two accumulators per vector
    /// (eight independent FMA chains). `L2` selects squared L2 (with the
    /// early stop of [`super::DistanceFn4`]), else dot.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn many4<const L2: bool>(q: &[f32], v: [&[f32]; 4], bound: f32) -> [f32; 4] {
        let n = v.iter().fold(q.len(), |n, x| n.min(x.len()));
        // A macro, not a closure: the intrinsics must be inlined into this
        // `target_feature` function.
        macro_rules! step {
            ($acc:expr, $x:expr, $y:expr) => {{
                let (x, y) = ($x, $y);
                if L2 {
                    let d = _mm256_sub_ps(x, y);
                    _mm256_fmadd_ps(d, d, $acc)
                } else {
                    _mm256_fmadd_ps(x, y, $acc)
                }
            }};
        }
        let mut a0 = [_mm256_setzero_ps(); 4];
        let mut a1 = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        let mut check_at = if L2 && bound < f32::INFINITY {
            CHECK_EVERY
        } else {
            usize::MAX
        };
        while i + 16 <= n {
            // SAFETY: i + 16 <= n <= the length of `q` and of every `v[j]`;
            // loadu has no alignment requirement.
            unsafe {
                let q0 = _mm256_loadu_ps(q.as_ptr().add(i));
                let q1 = _mm256_loadu_ps(q.as_ptr().add(i + 8));
                for j in 0..4 {
                    let p = v[j].as_ptr().add(i);
                    a0[j] = step!(a0[j], q0, _mm256_loadu_ps(p));
                    a1[j] = step!(a1[j], q1, _mm256_loadu_ps(p.add(8)));
                }
            }
            i += 16;
            if i >= check_at {
                check_at += CHECK_EVERY;
                // Every lane only grows (squares are >= 0 and float addition
                // is monotone), so a partial sum above the bound stays above.
                // SAFETY: `hsum1` needs avx2 and fma, as this function does.
                let over = |j: usize| unsafe { hsum1(_mm256_add_ps(a0[j], a1[j])) } > bound;
                if over(0) && over(1) && over(2) && over(3) {
                    return [f32::INFINITY; 4];
                }
            }
        }
        if i + 8 <= n {
            // SAFETY: as above, with i + 8 <= n.
            unsafe {
                let q0 = _mm256_loadu_ps(q.as_ptr().add(i));
                for j in 0..4 {
                    a0[j] = step!(a0[j], q0, _mm256_loadu_ps(v[j].as_ptr().add(i)));
                }
            }
            i += 8;
        }
        let mut out = [0.0f32; 4];
        for j in 0..4 {
            // SAFETY: as in the early stop above.
            let mut s = unsafe { hsum1(_mm256_add_ps(a0[j], a1[j])) };
            for (x, y) in q[i..n].iter().zip(&v[j][i..n]) {
                s += if L2 { (x - y) * (x - y) } else { x * y };
            }
            out[j] = s;
        }
        out
    }

    pub(super) fn l2_sq4(q: &[f32], v: [&[f32]; 4], bound: f32) -> [f32; 4] {
        // SAFETY: installed only after avx2 and fma were detected.
        unsafe { many4::<true>(q, v, bound) }
    }

    pub(super) fn cosine4(q: &[f32], v: [&[f32]; 4], _bound: f32) -> [f32; 4] {
        // SAFETY: installed only after avx2 and fma were detected.
        unsafe { many4::<false>(q, v, f32::INFINITY) }.map(|d| 1.0 - d)
    }

    pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: this function is only installed by `kernels()` after
        // `is_x86_feature_detected!` confirmed avx2 and fma on this CPU.
        unsafe { dot_avx2(a, b) }
    }

    pub(super) fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: as for `dot`.
        unsafe { l2_sq_avx2(a, b) }
    }

    pub(super) fn cosine(a: &[f32], b: &[f32]) -> f32 {
        1.0 - dot(a, b)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! AVX-512F kernels: half the instructions of the AVX2 ones for the same
    //! work, and a masked load for the tail instead of a scalar loop. On the
    //! AMD EPYC of the benchmarks (full-width 512-bit units) a 2-thread build
    //! of fashion-mnist-784 took 0.83× the CPU time it took with the AVX2
    //! kernels (hnswlib also measures with AVX-512 there). Only reachable
    //! after run-time detection in [`super::kernels`].

    use std::arch::x86_64::*;

    use super::avx2::CHECK_EVERY;

    /// A mask of the first `r` (< 16) lanes.
    #[inline(always)]
    fn tail_mask(r: usize) -> __mmask16 {
        ((1u32 << r) - 1) as __mmask16
    }

    /// `Σ f(a_d, b_d)` with four independent 16-lane accumulators (64 floats
    /// per step) and a masked tail; `L2` selects `(a − b)²`, else `a · b`.
    #[target_feature(enable = "avx512f")]
    unsafe fn one<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        macro_rules! step {
            ($acc:expr, $x:expr, $y:expr) => {{
                let (x, y) = ($x, $y);
                if L2 {
                    let d = _mm512_sub_ps(x, y);
                    _mm512_fmadd_ps(d, d, $acc)
                } else {
                    _mm512_fmadd_ps(x, y, $acc)
                }
            }};
        }
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY (all loads below): every unmasked load reads 16 floats at
        // `i` with i + 16 <= n, n at most the length of both slices; the
        // masked tail reads only lanes below n - i (masked-off lanes are
        // neither read nor faulted on); loadu has no alignment requirement.
        while i + 64 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                let o = i + 16 * j;
                *acc = step!(*acc, unsafe { _mm512_loadu_ps(pa.add(o)) }, unsafe {
                    _mm512_loadu_ps(pb.add(o))
                });
            }
            i += 64;
        }
        let mut j = 0;
        while i + 16 <= n {
            acc[j] = step!(acc[j], unsafe { _mm512_loadu_ps(pa.add(i)) }, unsafe {
                _mm512_loadu_ps(pb.add(i))
            });
            i += 16;
            j += 1;
        }
        if i < n {
            let k = tail_mask(n - i);
            acc[3] = step!(
                acc[3],
                unsafe { _mm512_maskz_loadu_ps(k, pa.add(i)) },
                unsafe { _mm512_maskz_loadu_ps(k, pb.add(i)) }
            );
        }
        let s = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        _mm512_reduce_add_ps(s)
    }

    /// One query against four vectors: each step loads 32 floats of the
    /// query once and of every vector once, into two accumulators per
    /// vector (eight independent FMA chains); the early stop of
    /// [`super::DistanceFn4`] is checked every [`CHECK_EVERY`] dimensions,
    /// as in the AVX2 kernel. `L2` selects squared L2, else dot.
    #[target_feature(enable = "avx512f")]
    unsafe fn many4<const L2: bool>(q: &[f32], v: [&[f32]; 4], bound: f32) -> [f32; 4] {
        let n = v.iter().fold(q.len(), |n, x| n.min(x.len()));
        let pq = q.as_ptr();
        let pv = v.map(<[f32]>::as_ptr);
        macro_rules! step {
            ($acc:expr, $x:expr, $y:expr) => {{
                let (x, y) = ($x, $y);
                if L2 {
                    let d = _mm512_sub_ps(x, y);
                    _mm512_fmadd_ps(d, d, $acc)
                } else {
                    _mm512_fmadd_ps(x, y, $acc)
                }
            }};
        }
        let mut a0 = [_mm512_setzero_ps(); 4];
        let mut a1 = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        let mut check_at = if L2 && bound < f32::INFINITY {
            CHECK_EVERY
        } else {
            usize::MAX
        };
        // SAFETY (all loads below): as in `one`, with n at most the length
        // of `q` and of every `v[j]`.
        while i + 32 <= n {
            let q0 = unsafe { _mm512_loadu_ps(pq.add(i)) };
            let q1 = unsafe { _mm512_loadu_ps(pq.add(i + 16)) };
            for j in 0..4 {
                a0[j] = step!(a0[j], q0, unsafe { _mm512_loadu_ps(pv[j].add(i)) });
                a1[j] = step!(a1[j], q1, unsafe { _mm512_loadu_ps(pv[j].add(i + 16)) });
            }
            i += 32;
            if i >= check_at {
                check_at += CHECK_EVERY;
                // Every lane only grows, so a partial sum above the bound
                // stays above (see the AVX2 kernel).
                let over = |j: usize| _mm512_reduce_add_ps(_mm512_add_ps(a0[j], a1[j])) > bound;
                if over(0) && over(1) && over(2) && over(3) {
                    return [f32::INFINITY; 4];
                }
            }
        }
        if i + 16 <= n {
            let q0 = unsafe { _mm512_loadu_ps(pq.add(i)) };
            for j in 0..4 {
                a0[j] = step!(a0[j], q0, unsafe { _mm512_loadu_ps(pv[j].add(i)) });
            }
            i += 16;
        }
        if i < n {
            let k = tail_mask(n - i);
            let q1 = unsafe { _mm512_maskz_loadu_ps(k, pq.add(i)) };
            for j in 0..4 {
                a1[j] = step!(a1[j], q1, unsafe { _mm512_maskz_loadu_ps(k, pv[j].add(i)) });
            }
        }
        let mut out = [0.0f32; 4];
        for j in 0..4 {
            out[j] = _mm512_reduce_add_ps(_mm512_add_ps(a0[j], a1[j]));
        }
        out
    }

    pub(super) fn l2_sq4(q: &[f32], v: [&[f32]; 4], bound: f32) -> [f32; 4] {
        // SAFETY: installed only after avx512f was detected.
        unsafe { many4::<true>(q, v, bound) }
    }

    pub(super) fn cosine4(q: &[f32], v: [&[f32]; 4], _bound: f32) -> [f32; 4] {
        // SAFETY: installed only after avx512f was detected.
        unsafe { many4::<false>(q, v, f32::INFINITY) }.map(|d| 1.0 - d)
    }

    pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: installed only after avx512f was detected.
        unsafe { one::<false>(a, b) }
    }

    pub(super) fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: installed only after avx512f was detected.
        unsafe { one::<true>(a, b) }
    }

    pub(super) fn cosine(a: &[f32], b: &[f32]) -> f32 {
        1.0 - dot(a, b)
    }
}

/// Scales `v` to unit length. Returns `None` (leaving `v` unchanged) when its
/// length is zero.
pub fn normalize(v: &mut [f32]) -> Option<()> {
    // Accumulate in f64: rows can be long and values large.
    let norm_sq: f64 = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    if norm_sq <= 0.0 || !norm_sq.is_finite() {
        return None;
    }
    let inv = (1.0 / norm_sq.sqrt()) as f32;
    for x in v {
        *x *= inv;
    }
    Some(())
}

/// Checks that `len` floats form whole rows of `dim`.
pub fn check_shape(len: usize, dim: usize) -> Result<()> {
    if dim == 0 {
        return Err(Error::param(
            "dim",
            0,
            "vectors need at least one dimension",
        ));
    }
    if !len.is_multiple_of(dim) {
        return Err(Error::InvalidInput(format!(
            "{len} values do not form whole rows of dimension {dim}"
        )));
    }
    Ok(())
}

/// The length from which an l2 vector is refused. |a − b|² ≤ (|a| + |b|)²
/// ≤ 4·max(|a|², |b|²), so with every squared length below `f32::MAX / 4`
/// each distance, and each partial sum of one, stays finite in float32. A
/// query of values near 1e30 used to get `inf` for every item, in no
/// particular order. (Cosine normalises in f64, so it needs no bound.)
pub const MAX_L2_LENGTH: f64 = 9.2e18;
const _: () = assert!(MAX_L2_LENGTH * MAX_L2_LENGTH <= f32::MAX as f64 / 4.0);

/// Returns an error naming the first row of [`MAX_L2_LENGTH`] or longer.
fn check_l2_length(data: &[f32], dim: usize) -> Result<()> {
    for (row, v) in data.chunks_exact(dim.max(1)).enumerate() {
        let len_sq: f64 = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        if len_sq >= MAX_L2_LENGTH * MAX_L2_LENGTH {
            return Err(Error::TooLong {
                row,
                length: len_sq.sqrt(),
                max: MAX_L2_LENGTH,
            });
        }
    }
    Ok(())
}

/// Returns an error naming the first NaN or infinite value.
pub fn check_finite(data: &[f32], dim: usize) -> Result<()> {
    if data.iter().all(|x| x.is_finite()) {
        return Ok(());
    }
    let pos = data.iter().position(|x| !x.is_finite()).unwrap_or(0);
    Err(Error::NonFinite {
        row: pos / dim.max(1),
        col: pos % dim.max(1),
        value: data[pos],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum()
    }

    #[test]
    fn kernels_match_naive_for_all_tail_lengths() {
        for n in [0usize, 1, 3, 15, 16, 17, 31, 64, 100, 784] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32) - 6.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 5 % 11) as f32) * 0.5).collect();
            let want = naive_dot(&a, &b);
            assert!((f64::from(dot(&a, &b)) - want).abs() < 1e-3, "dot n={n}");
            assert!((f64::from(dot_portable(&a, &b)) - want).abs() < 1e-3);
            let want_l2: f64 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
                .sum();
            assert!(
                (f64::from(l2_sq(&a, &b)) - want_l2).abs() < 1e-2,
                "l2 n={n}"
            );
            assert!((f64::from(l2_sq_portable(&a, &b)) - want_l2).abs() < 1e-2);
        }
    }

    #[test]
    fn four_at_once_kernels_match_the_single_ones() {
        for n in [1usize, 7, 8, 15, 16, 17, 24, 33, 100, 784] {
            let q: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32) - 6.0).collect();
            let vs: Vec<Vec<f32>> = (0..4)
                .map(|j| (0..n).map(|i| ((i * 5 + j) % 11) as f32 * 0.5).collect())
                .collect();
            let refs = [&vs[0][..], &vs[1][..], &vs[2][..], &vs[3][..]];
            for m in [Metric::L2, Metric::Cosine] {
                let four = (m.kernel4())(&q, refs, f32::INFINITY);
                for j in 0..4 {
                    let one = (m.kernel())(&q, refs[j]);
                    let tol = 1e-4 * one.abs().max(1.0);
                    assert!((four[j] - one).abs() <= tol, "{m} n={n}: {four:?} vs {one}");
                }
                // A bound: distances at or below it are unchanged, the rest
                // are either exact or all infinite.
                let max = four.iter().cloned().fold(0.0f32, f32::max);
                let min = four.iter().cloned().fold(f32::INFINITY, f32::min);
                for bound in [0.0, min * 0.5, min, max, max * 2.0] {
                    let b = (m.kernel4())(&q, refs, bound);
                    if b.iter().all(|d| d.is_infinite()) {
                        assert!(four.iter().all(|&d| d > bound), "{m} n={n} bound {bound}");
                    } else {
                        assert_eq!(b, four, "{m} n={n} bound {bound}");
                    }
                }
            }
        }
    }

    /// Every SIMD kernel this CPU runs (AVX-512F, AVX2+FMA) against the
    /// portable one and an f64 reference, on odd lengths that exercise each
    /// tail (masked lanes, half steps), with and without the early stop.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn simd_kernels_match_portable_on_odd_lengths() {
        type Set = (
            &'static str,
            DistanceFn,
            DistanceFn,
            DistanceFn4,
            DistanceFn4,
        );
        let mut sets: Vec<Set> = Vec::new();
        if std::arch::is_x86_feature_detected!("avx512f") {
            sets.push((
                "avx512",
                avx512::l2_sq,
                avx512::dot,
                avx512::l2_sq4,
                avx512::cosine4,
            ));
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            sets.push(("avx2", avx2::l2_sq, avx2::dot, avx2::l2_sq4, avx2::cosine4));
        }
        let mut state = 7u64;
        let mut rnd =
            || (crate::graph::splitmix64(&mut state) >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
        for n in [
            1usize, 5, 15, 16, 17, 31, 33, 47, 63, 65, 127, 129, 200, 255, 257, 783, 785,
        ] {
            let q: Vec<f32> = (0..n).map(|_| rnd()).collect();
            let vs: Vec<Vec<f32>> = (0..4).map(|_| (0..n).map(|_| rnd()).collect()).collect();
            let refs = [&vs[0][..], &vs[1][..], &vs[2][..], &vs[3][..]];
            for &(name, l2, dt, l24, cos4) in &sets {
                let four = l24(&q, refs, f32::INFINITY);
                let four_cos = cos4(&q, refs, f32::INFINITY);
                for j in 0..4 {
                    let want_l2 = l2_sq_portable(&q, refs[j]);
                    let want_dot = dot_portable(&q, refs[j]);
                    let exact: f64 = q
                        .iter()
                        .zip(refs[j])
                        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
                        .sum();
                    let tol = 1e-5 * (n as f32).max(1.0);
                    assert!(
                        (f64::from(l2(&q, refs[j])) - exact).abs() <= f64::from(tol),
                        "{name} l2 n={n}"
                    );
                    assert!((l2(&q, refs[j]) - want_l2).abs() <= tol, "{name} l2 n={n}");
                    assert!((four[j] - want_l2).abs() <= tol, "{name} l2x4 n={n}");
                    assert!(
                        (dt(&q, refs[j]) - want_dot).abs() <= tol,
                        "{name} dot n={n}"
                    );
                    assert!(
                        (four_cos[j] - (1.0 - want_dot)).abs() <= tol,
                        "{name} cos4 n={n}"
                    );
                }
                let min = four.iter().cloned().fold(f32::INFINITY, f32::min);
                for bound in [0.0, min * 0.5, min, min * 2.0] {
                    let b = l24(&q, refs, bound);
                    if b.iter().all(|d| d.is_infinite()) {
                        assert!(
                            four.iter().all(|&d| d > bound),
                            "{name} n={n} bound {bound}"
                        );
                    } else {
                        assert_eq!(b, four, "{name} n={n} bound {bound}");
                    }
                }
            }
        }
    }

    #[test]
    fn metric_distances() {
        let a = [3.0f32, 4.0];
        let b = [0.0f32, 1.0];
        assert_eq!(Metric::L2.distance(&a, &b), 9.0 + 9.0);
        let mut x = a.to_vec();
        x.extend_from_slice(&b);
        Metric::Cosine.preprocess(&mut x, 2).unwrap();
        assert!((x[0] - 0.6).abs() < 1e-6 && (x[1] - 0.8).abs() < 1e-6);
        let d = Metric::Cosine.distance(&x[..2], &x[2..]);
        assert!((d - 0.2).abs() < 1e-6, "{d}");
        assert_eq!(Metric::L2.kernel()(&a, &b), 18.0);
    }

    #[test]
    fn preprocess_rejects_nan_inf_and_zero_rows() {
        let mut v = vec![1.0, 2.0, 3.0, f32::NAN];
        match Metric::L2.preprocess(&mut v, 2) {
            Err(Error::NonFinite { row: 1, col: 1, .. }) => {}
            other => panic!("{other:?}"),
        }
        let mut v = vec![1.0, f32::INFINITY];
        assert!(matches!(
            Metric::Cosine.preprocess(&mut v, 1),
            Err(Error::NonFinite { row: 1, col: 0, .. })
        ));
        let mut v = vec![1.0, 0.0, 0.0, 0.0];
        assert!(matches!(
            Metric::Cosine.preprocess(&mut v, 2),
            Err(Error::ZeroVector { row: 1 })
        ));
        // L2 accepts the zero vector.
        Metric::L2.preprocess(&mut v, 2).unwrap();
        assert!(Metric::L2.preprocess(&mut v, 3).is_err());
        assert!(Metric::L2.preprocess(&mut v, 0).is_err());
    }

    #[test]
    fn l2_refuses_rows_whose_distances_would_overflow() {
        // The longest accepted rows, pointing opposite ways: the largest
        // distance there is between accepted rows, and it stays finite.
        let edge = (MAX_L2_LENGTH * 0.999999) as f32;
        let (a, b) = ([edge, 0.0], [-edge, 0.0]);
        Metric::L2.check_values(&[a, b].concat(), 2).unwrap();
        assert!(Metric::L2.distance(&a, &b).is_finite());
        assert!(Metric::L2.kernel()(&a, &b).is_finite());
        // A query of 1e30s used to get inf for every item.
        let mut v = vec![1.0, 2.0, 1e30, 1e30];
        match Metric::L2.preprocess(&mut v, 2) {
            Err(e @ Error::TooLong { row: 1, .. }) => {
                assert!(e.to_string().contains("row 1 has length 1.414e30"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        // Cosine normalises such rows in f64.
        Metric::Cosine.preprocess(&mut v, 2).unwrap();
        assert!((v[2] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    }

    #[test]
    fn metric_names_round_trip() {
        for m in [Metric::Cosine, Metric::L2] {
            assert_eq!(m.as_str().parse::<Metric>().unwrap(), m);
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.as_str()));
        }
        assert!("euclid".parse::<Metric>().is_err());
        assert_eq!(Metric::default(), Metric::Cosine);
    }
}
