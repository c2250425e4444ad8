//! `likeness doctor`: is this machine ready, and what data does it have?
use std::path::PathBuf;

use serde::Serialize;

use crate::data::Dataset;
use crate::error::Result;
use crate::runtime::{self, DeviceSpec, DeviceSpecExt};

#[derive(Debug, Serialize)]
pub struct DatasetStatus {
    pub name: String,
    pub path: PathBuf,
    pub present: bool,
    pub items: usize,
    pub classes: usize,
    /// Why it is missing or unreadable, if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub likeness_version: String,
    pub libtorch_version: Option<String>,
    pub libtorch_lib: Option<PathBuf>,
    pub cuda_available: bool,
    pub cuda_devices: Vec<String>,
    pub cudnn_available: bool,
    pub device_requested: String,
    pub device: Option<String>,
    /// torch's intra-op threads (the number `doctor --json` has always
    /// reported; before `--torch-threads` both pools had it).
    pub threads: usize,
    /// torch's and rayon's thread counts, and why.
    pub thread_plan: runtime::ThreadPlan,
    /// How libtorch's OpenMP threads wait ([`likeness_app::openmp`]).
    pub openmp_wait: String,
    pub cache_dir: PathBuf,
    pub datasets: Vec<DatasetStatus>,
    /// The face models `regions` uses: file, what, licence, package, state.
    pub face_models: Vec<String>,
    /// True when likeness can run here (libtorch works, the device resolves).
    pub ok: bool,
    pub problems: Vec<String>,
    pub hints: Vec<String>,
}

fn dataset_status(name: &str, path: PathBuf) -> DatasetStatus {
    match Dataset::open(&path) {
        Ok(d) => DatasetStatus {
            name: name.into(),
            path,
            present: true,
            items: d.len(),
            classes: d.classes().len(),
            problem: None,
        },
        Err(e) => DatasetStatus {
            name: name.into(),
            path,
            present: false,
            items: 0,
            classes: 0,
            problem: Some(e.to_string()),
        },
    }
}

/// Gathers the report. `threads` is what [`runtime::init_threads`] set.
pub fn report(device: DeviceSpec, threads: &runtime::ThreadPlan) -> Result<Report> {
    let mut problems = Vec::new();
    let mut hints = Vec::new();

    // A real tensor op proves libtorch loads and computes.
    let sum = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0]).sum(tch::Kind::Float);
    if (f64::try_from(sum).unwrap_or(f64::NAN) - 6.0).abs() > 1e-6 {
        problems.push("libtorch loaded but computed a wrong sum".into());
    }
    let resolved = match device.resolve() {
        Ok(d) => Some(format!("{d:?}").to_lowercase()),
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    let cuda_available = tch::Cuda::is_available();
    let libtorch_version = runtime::libtorch_version();
    if let Some(v) = &libtorch_version {
        if !v.starts_with("2.11.0") {
            problems.push(format!("libtorch {v} is loaded but tch 0.24 needs 2.11.0"));
            hints.push("rebuild with `make build` (uses the cached torch 2.11.0 venv)".into());
        }
    }

    let datasets = vec![
        dataset_status("fashion-mnist-train", crate::cache::fashion_mnist_train()),
        dataset_status("fashion-mnist-test", crate::cache::fashion_mnist_test()),
        dataset_status("johns", crate::cache::johns_dir()),
    ];
    if datasets.iter().any(|d| !d.present) {
        hints.push("run `make data` to fetch the missing datasets from Debian packages".into());
    }
    if !problems.is_empty() && cuda_available {
        hints.push("check the GPU with nvidia-smi".into());
    }
    Ok(Report {
        likeness_version: env!("CARGO_PKG_VERSION").into(),
        libtorch_version,
        libtorch_lib: runtime::loaded_libtorch_dir(),
        cuda_available,
        cuda_devices: runtime::cuda_device_names(),
        cudnn_available: tch::Cuda::cudnn_is_available(),
        device_requested: device.to_string(),
        device: resolved,
        threads: threads.torch,
        thread_plan: threads.clone(),
        openmp_wait: likeness_app::openmp::in_effect(),
        cache_dir: crate::cache::cache_dir(),
        datasets,
        face_models: likeness_app::face::models::report(&likeness_app::face::models::default_dir()),
        ok: problems.is_empty(),
        problems,
        hints,
    })
}

impl Report {
    /// The human-readable form.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let na = || "unknown".to_string();
        let _ = writeln!(s, "likeness   {}", self.likeness_version);
        let _ = writeln!(
            s,
            "libtorch   {} ({})",
            self.libtorch_version.clone().unwrap_or_else(na),
            self.libtorch_lib
                .as_ref()
                .map_or_else(na, |p| p.display().to_string())
        );
        if self.cuda_available {
            let _ = writeln!(s, "cuda       available: {}", self.cuda_devices.join(", "));
            let _ = writeln!(
                s,
                "cudnn      {}",
                if self.cudnn_available {
                    "available"
                } else {
                    "not available"
                }
            );
        } else {
            let _ = writeln!(s, "cuda       not available");
        }
        let _ = writeln!(
            s,
            "device     {} -> {}",
            self.device_requested,
            self.device.clone().unwrap_or_else(|| "unavailable".into())
        );
        let _ = writeln!(s, "threads    {}", self.thread_plan);
        let _ = writeln!(s, "openmp     {}", self.openmp_wait);
        let _ = writeln!(s, "cache      {}", self.cache_dir.display());
        let _ = writeln!(s, "datasets");
        for d in &self.datasets {
            if d.present {
                let _ = writeln!(
                    s,
                    "  {:<22} {:>6} images, {:>2} classes  {}",
                    d.name,
                    d.items,
                    d.classes,
                    d.path.display()
                );
            } else {
                let _ = writeln!(
                    s,
                    "  {:<22} missing: {}",
                    d.name,
                    d.problem.clone().unwrap_or_default()
                );
            }
        }
        let _ = writeln!(
            s,
            "face models (likeness regions; train --arch dlib-resnet)"
        );
        for m in &self.face_models {
            let _ = writeln!(s, "  {m}");
        }
        for p in &self.problems {
            let _ = writeln!(s, "problem: {p}");
        }
        for h in &self.hints {
            let _ = writeln!(s, "hint: {h}");
        }
        let _ = write!(
            s,
            "{}",
            if self.ok {
                "status     ok"
            } else {
                "status     NOT USABLE"
            }
        );
        s
    }
}
