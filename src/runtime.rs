//! Process-wide settings for torch and rayon: which device, how many threads.

use crate::error::{Error, Result};

pub use likeness_app::settings::DeviceSpec;

/// What torch makes of a [`DeviceSpec`].
pub trait DeviceSpecExt {
    /// Whether this spec runs on CUDA here (`auto` asks libtorch).
    fn is_cuda(&self) -> bool;
    /// The torch device this spec names, or an error if CUDA was asked for
    /// and is not there.
    fn resolve(&self) -> Result<tch::Device>;
}

impl DeviceSpecExt for DeviceSpec {
    fn is_cuda(&self) -> bool {
        match *self {
            DeviceSpec::Cpu => false,
            DeviceSpec::Cuda(_) => true,
            DeviceSpec::Auto => tch::Cuda::is_available(),
        }
    }

    fn resolve(&self) -> Result<tch::Device> {
        match *self {
            DeviceSpec::Cpu => Ok(tch::Device::Cpu),
            DeviceSpec::Auto => Ok(if tch::Cuda::is_available() {
                tch::Device::Cuda(0)
            } else {
                tch::Device::Cpu
            }),
            DeviceSpec::Cuda(n) => {
                if !tch::Cuda::is_available() {
                    return Err(Error::Device(format!(
                        "cuda:{n} was asked for but CUDA is not available (no GPU, no driver, \
                         or a CPU-only libtorch); use --device cpu or auto"
                    )));
                }
                let count = tch::Cuda::device_count().max(0) as usize;
                if n >= count {
                    return Err(Error::Device(format!(
                        "cuda:{n} was asked for but this machine has {count} CUDA device(s) \
                         (numbered from 0)"
                    )));
                }
                Ok(tch::Device::Cuda(n))
            }
        }
    }
}

/// torch's intra-op threads by default when the device is CUDA. The GPU does
/// the arithmetic; host threads only launch kernels and copy batches. On an
/// H200 with 16 cores, `--threads 2` trained at 36–40k images/s against
/// 20–21k with all 16 (docs/benchmarks.md, "GPU numbers"); that run set both
/// pools at once, and `make bench-cuda PARTS=threads` measures them apart.
pub const CUDA_TORCH_THREADS: usize = 2;

/// Thread counts asked for on the command line (`--threads`,
/// `--torch-threads`, `--loader-threads`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThreadRequest {
    /// Both pools.
    pub threads: Option<usize>,
    /// torch's intra-op pool only.
    pub torch: Option<usize>,
    /// rayon's pool only (decoding, augmentation, search).
    pub loader: Option<usize>,
}

/// The thread counts in effect, and why (printed by `doctor` and `train`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ThreadPlan {
    /// torch's intra-op threads: the forward and backward passes on the CPU.
    pub torch: usize,
    /// rayon's threads: image decoding, augmentation, index search.
    pub loader: usize,
    /// One line: where each count comes from.
    pub why: String,
}

impl std::fmt::Display for ThreadPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "torch {}, loader {} ({})",
            self.torch, self.loader, self.why
        )
    }
}

/// Decides the thread counts: an explicit `--torch-threads` or
/// `--loader-threads` wins, then `--threads` (both pools), then the default
/// for the device: all `cores` for both on the CPU; on CUDA
/// [`CUDA_TORCH_THREADS`] for torch and all cores for the loader, which
/// decodes the images the GPU waits for.
pub fn plan_threads(req: ThreadRequest, cuda: bool, cores: usize) -> Result<ThreadPlan> {
    for (flag, v) in [
        ("--threads", req.threads),
        ("--torch-threads", req.torch),
        ("--loader-threads", req.loader),
    ] {
        if v == Some(0) {
            return Err(Error::Invalid(format!("{flag} must be at least 1")));
        }
    }
    let cores = cores.max(1);
    let (torch_default, torch_why) = match req.threads {
        Some(n) => (n, "--threads".to_string()),
        None if cuda => (
            CUDA_TORCH_THREADS.min(cores),
            "CUDA default: the GPU computes, and more host threads slow its kernel launches"
                .to_string(),
        ),
        None => (cores, format!("all {cores} cores")),
    };
    let (loader_default, loader_why) = match req.threads {
        Some(n) => (n, "--threads".to_string()),
        None => (cores, format!("all {cores} cores")),
    };
    let (torch, torch_why) = match req.torch {
        Some(n) => (n, "--torch-threads".to_string()),
        None => (torch_default, torch_why),
    };
    let (loader, loader_why) = match req.loader {
        Some(n) => (n, "--loader-threads".to_string()),
        None => (loader_default, loader_why),
    };
    let why = if torch_why == loader_why {
        torch_why
    } else {
        format!("torch: {torch_why}; loader: {loader_why}")
    };
    Ok(ThreadPlan { torch, loader, why })
}

/// Sets torch's intra-op threads and the global rayon pool as `plan` says.
/// Call once, before any torch or rayon work.
pub fn init_threads(plan: &ThreadPlan) {
    tch::set_num_threads(plan.torch as i32);
    // A second call in the same process (tests) keeps the first pool; that is fine.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(plan.loader)
        .build_global();
}

/// The machine's cores (what the defaults use).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The libtorch version actually loaded: read from the `version.py` (PyTorch
/// wheel) or `build-version` (libtorch archive) beside the loaded library.
pub fn libtorch_version() -> Option<String> {
    let dir = loaded_libtorch_dir()?;
    let root = dir.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("__version__") {
                let v = rest
                    .trim_start_matches([' ', '='])
                    .trim()
                    .trim_matches(['\'', '"']);
                return Some(v.to_string());
            }
        }
    }
    std::fs::read_to_string(root.join("build-version"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Folder of the `libtorch_cpu.so` mapped into this process.
pub fn loaded_libtorch_dir() -> Option<std::path::PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))
        .and_then(|p| std::path::Path::new(p).parent().map(|d| d.to_path_buf()))
}

/// `cpu (N threads)` or `cuda:N (GPU name)`, for model cards and reports.
pub fn describe_device(device: tch::Device) -> String {
    match device {
        tch::Device::Cuda(n) => match cuda_device_names().into_iter().nth(n) {
            Some(name) if !name.starts_with("cuda:") => format!("cuda:{n} ({name})"),
            _ => format!("cuda:{n}"),
        },
        _ => format!("cpu ({} threads)", tch::get_num_threads()),
    }
}

/// Names of the CUDA devices, asked of the CUDA runtime that libtorch loaded
/// (`cudaGetDeviceProperties`, whose struct starts with `char name[256]`).
pub fn cuda_device_names() -> Vec<String> {
    if !tch::Cuda::is_available() {
        return Vec::new();
    }
    let count = tch::Cuda::device_count().max(0) as usize;
    let names = cudart_names(count);
    (0..count)
        .map(|i| {
            names
                .get(i)
                .cloned()
                .flatten()
                .unwrap_or_else(|| format!("cuda:{i}"))
        })
        .collect()
}

fn cudart_names(count: usize) -> Vec<Option<String>> {
    type GetProps = unsafe extern "C" fn(*mut u8, i32) -> i32;
    let lib = loaded_libtorch_dir().and_then(|dir| {
        // The CUDA runtime is already loaded by libtorch_cuda; opening it by
        // its path or soname returns that same copy.
        let candidates = [
            "libcudart.so.13".to_string(),
            "libcudart.so.12".to_string(),
            dir.join("../../nvidia/cu13/lib/libcudart.so.13")
                .display()
                .to_string(),
            dir.join("../../nvidia/cuda_runtime/lib/libcudart.so.12")
                .display()
                .to_string(),
        ];
        candidates.iter().find_map(|c| {
            // SAFETY: loading the CUDA runtime runs its initialisers, which
            // libtorch_cuda has already run in this process.
            unsafe { libloading::Library::new(c) }.ok()
        })
    });
    let Some(lib) = lib else {
        return vec![None; count];
    };
    // SAFETY: the symbol has the C signature
    // `cudaError_t cudaGetDeviceProperties(cudaDeviceProp*, int)`.
    let get: libloading::Symbol<GetProps> = match unsafe {
        lib.get::<GetProps>(b"cudaGetDeviceProperties_v2\0")
            .or_else(|_| lib.get::<GetProps>(b"cudaGetDeviceProperties\0"))
    } {
        Ok(f) => f,
        Err(_) => return vec![None; count],
    };
    (0..count)
        .map(|i| {
            // cudaDeviceProp is ~1 KiB; 16 KiB leaves room for future fields.
            let mut buf = vec![0u8; 16 * 1024];
            // SAFETY: `buf` is larger than cudaDeviceProp and writable.
            let rc = unsafe { get(buf.as_mut_ptr(), i as i32) };
            if rc != 0 {
                return None;
            }
            let name = &buf[..256];
            let end = name.iter().position(|&b| b == 0).unwrap_or(256);
            Some(String::from_utf8_lossy(&name[..end]).into_owned())
        })
        .collect()
}

pub use likeness_app::settings::Precision;

// libtorch's own autocast switches for a device type, which tch does not
// wrap. They take plain scalars (`c10::DeviceType` and `c10::ScalarType` are
// int8 enum classes: CPU = 0, CUDA = 1; BFloat16 = 15), so the C++ functions
// have the C calling convention on x86-64 and aarch64; the mangled names are
// those of libtorch 2.x.
extern "C" {
    #[link_name = "_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb"]
    fn at_autocast_set_enabled_for(device_type: i8, enabled: bool);
    #[link_name = "_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE"]
    fn at_autocast_is_enabled_for(device_type: i8) -> bool;
    #[link_name = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE"]
    fn at_autocast_set_dtype_for(device_type: i8, dtype: i8);
    #[link_name = "_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE"]
    fn at_autocast_get_dtype_for(device_type: i8) -> i8;
    #[link_name = "_ZN2at8autocast17increment_nestingEv"]
    fn at_autocast_increment_nesting() -> i64;
    #[link_name = "_ZN2at8autocast17decrement_nestingEv"]
    fn at_autocast_decrement_nesting() -> i64;
    #[link_name = "_ZN2at8autocast11clear_cacheEv"]
    fn at_autocast_clear_cache();
}

const CPU_DEVICE_TYPE: i8 = 0;
const CUDA_DEVICE_TYPE: i8 = 1;
const BFLOAT16: i8 = 15;

/// Runs `f` with autocast to bfloat16 on the CPU and on CUDA when
/// `precision` is `Bf16`, as `torch.autocast(device, dtype=torch.bfloat16)`
/// does: on leaving the outermost region the cache of bf16 weight copies is
/// cleared (else the next step would reuse stale weights), and the previous
/// state is restored. (`tch::autocast` switches CUDA only, and to float16,
/// CUDA's default, whose gradients need loss scaling; bfloat16 needs none.)
pub fn with_precision<T>(precision: Precision, f: impl FnOnce() -> T) -> T {
    match precision {
        Precision::Fp32 => f(),
        Precision::Bf16 => {
            let devices = [CPU_DEVICE_TYPE, CUDA_DEVICE_TYPE];
            // SAFETY: plain-scalar calls into libtorch, which is linked; they
            // only touch autocast's thread-local state.
            let prev = devices.map(|d| unsafe {
                let state = (at_autocast_is_enabled_for(d), at_autocast_get_dtype_for(d));
                at_autocast_set_enabled_for(d, true);
                at_autocast_set_dtype_for(d, BFLOAT16);
                state
            });
            // SAFETY: as above.
            unsafe { at_autocast_increment_nesting() };
            let out = f();
            // SAFETY: as above.
            unsafe {
                if at_autocast_decrement_nesting() == 0 {
                    at_autocast_clear_cache();
                }
                for (d, (enabled, dtype)) in devices.into_iter().zip(prev) {
                    at_autocast_set_enabled_for(d, enabled);
                    at_autocast_set_dtype_for(d, dtype);
                }
            }
            out
        }
    }
}

/// Autocast in this thread for `device`'s type: whether it is on, and whether
/// its target type is bfloat16 (for tests).
pub fn autocast_state(device: tch::Device) -> (bool, bool) {
    let d = if device.is_cuda() {
        CUDA_DEVICE_TYPE
    } else {
        CPU_DEVICE_TYPE
    };
    // SAFETY: reads thread-local state in libtorch.
    unsafe {
        (
            at_autocast_is_enabled_for(d),
            at_autocast_get_dtype_for(d) == BFLOAT16,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(
        threads: Option<usize>,
        torch: Option<usize>,
        loader: Option<usize>,
        cuda: bool,
    ) -> ThreadPlan {
        plan_threads(
            ThreadRequest {
                threads,
                torch,
                loader,
            },
            cuda,
            16,
        )
        .unwrap()
    }

    #[test]
    fn thread_defaults_per_device() {
        // CPU: every core for both pools, as before.
        let p = plan(None, None, None, false);
        assert_eq!((p.torch, p.loader), (16, 16));
        assert_eq!(p.why, "all 16 cores");
        // CUDA: few torch threads, every core for the loader.
        let p = plan(None, None, None, true);
        assert_eq!((p.torch, p.loader), (CUDA_TORCH_THREADS, 16));
        assert!(p.why.contains("CUDA default"), "{}", p.why);
        // A one-core machine never gets more torch threads than cores.
        let one = plan_threads(ThreadRequest::default(), true, 1).unwrap();
        assert_eq!((one.torch, one.loader), (1, 1));
    }

    #[test]
    fn explicit_thread_counts_win_over_the_defaults() {
        // --threads sets both, on either device.
        for cuda in [false, true] {
            let p = plan(Some(3), None, None, cuda);
            assert_eq!((p.torch, p.loader), (3, 3));
            assert_eq!(p.why, "--threads");
        }
        // Each pool's own flag beats --threads.
        let p = plan(Some(3), Some(1), None, true);
        assert_eq!((p.torch, p.loader), (1, 3));
        assert_eq!(p.why, "torch: --torch-threads; loader: --threads");
        let p = plan(None, None, Some(5), true);
        assert_eq!((p.torch, p.loader), (CUDA_TORCH_THREADS, 5));
        // Zero is refused, naming the flag.
        for (req, flag) in [
            (
                ThreadRequest {
                    threads: Some(0),
                    ..Default::default()
                },
                "--threads",
            ),
            (
                ThreadRequest {
                    torch: Some(0),
                    ..Default::default()
                },
                "--torch-threads",
            ),
            (
                ThreadRequest {
                    loader: Some(0),
                    ..Default::default()
                },
                "--loader-threads",
            ),
        ] {
            let e = plan_threads(req, false, 4).unwrap_err().to_string();
            assert!(e.contains(flag), "{e}");
        }
    }
}
