//! `likeness doctor`: can this machine run likeness (libtorch, CUDA, threads, data)?
use std::process::ExitCode;

use likeness_app::args::DoctorArgs;

use crate::error::{Error, Result};
use crate::runtime::{self, DeviceSpec};

pub fn run(device: DeviceSpec, plan: &runtime::ThreadPlan, args: DoctorArgs) -> Result<ExitCode> {
    let report = crate::doctor::report(device, plan)?;
    let out = if args.json {
        serde_json::to_string(&report).map_err(|e| Error::Invalid(e.to_string()))?
    } else {
        report.render()
    };
    likeness_app::stdout::line(&out)?;
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
