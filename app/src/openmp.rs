//! How libtorch's OpenMP threads wait at the end of each parallel operation.
//!
//! The PyTorch wheel's libtorch uses GNU OpenMP, whose threads spin about
//! 300,000 times before they sleep. With the cores to itself that is
//! fastest; when anything else wants them, the spinning threads burn its
//! time slices. Training the johns faces (2 cores, 2026-12-05): two
//! trainings at once took 196 s each, against 22 s for one alone. Spinning
//! 1,000 times: 44 s for the two, and one alone 1.025× its time (best of 3
//! paired runs; OMP_WAIT_POLICY=PASSIVE: 38 s and 1.17×; 10,000 spins:
//! 92 s and 1.01×). libgomp reads its environment when it is loaded, before
//! `main`, so the setting goes into the environment of the process that
//! loads libtorch: the front sets it for `likeness-torch`, which sets it
//! for itself when run directly.

/// The variable and value that cap the spinning.
const SPIN: (&str, &str) = ("GOMP_SPINCOUNT", "1000");
/// The variables by which a user says how OpenMP waits.
const CHOICES: [&str; 2] = ["GOMP_SPINCOUNT", "OMP_WAIT_POLICY"];

/// What to put in the environment of a process that loads libtorch; `None`
/// where the user already chose how OpenMP waits.
pub fn wait_setting() -> Option<(&'static str, &'static str)> {
    let chosen = CHOICES.iter().any(|v| std::env::var_os(v).is_some());
    (!chosen).then_some(SPIN)
}

/// How this process's OpenMP threads wait, as its environment says (what
/// `doctor` reports).
pub fn in_effect() -> String {
    let set: Vec<String> = CHOICES
        .iter()
        .filter_map(|v| std::env::var(v).ok().map(|value| format!("{v}={value}")))
        .collect();
    if set.is_empty() {
        "libgomp's default (about 300,000 spins before sleeping)".into()
    } else {
        set.join(" ")
    }
}
