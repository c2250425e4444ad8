//! Process-wide settings for torch and rayon: which device, how many threads.
use std::str::FromStr;

use crate::error::{Error, Result};

/// `--device auto|cpu|cuda[:N]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// CUDA device 0 when CUDA is available, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceSpec::Auto),
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" | "gpu" => Ok(DeviceSpec::Cuda(0)),
            other => match other.strip_prefix("cuda:") {
                Some(n) => n
                    .parse()
                    .map(DeviceSpec::Cuda)
                    .map_err(|_| format!("`{s}`: expected cuda:N with N a device number")),
                None => Err(format!("`{s}`: expected auto, cpu, cuda or cuda:N")),
            },
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Auto => write!(f, "auto"),
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceSpec {
    /// The torch device this spec names, or an error if CUDA was asked for
    /// and is not there.
    pub fn resolve(self) -> Result<tch::Device> {
        match self {
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

/// Sets torch's intra-op threads and the global rayon pool to `threads`
/// (default: all cores). Call once, before any torch or rayon work.
pub fn init_threads(threads: Option<usize>) -> Result<usize> {
    let n = match threads {
        Some(0) => return Err(Error::Invalid("--threads must be at least 1".into())),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    tch::set_num_threads(n as i32);
    // A second call in the same process (tests) keeps the first pool; that is fine.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global();
    Ok(n)
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

/// Numeric precision of the training forward pass.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// float32 throughout.
    #[default]
    Fp32,
    /// Automatic mixed precision: the forward pass runs in bfloat16 where
    /// PyTorch's autocast policy allows it (convolutions, matmuls), weights
    /// and gradients stay float32 — `torch.autocast(dtype=torch.bfloat16)`.
    Bf16,
}

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
