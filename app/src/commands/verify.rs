//! `likeness verify`: every file of an index checked (sizes, CRC32s, links).
use std::process::ExitCode;
use std::time::Instant;

use likeness_index::Index;

use crate::args::VerifyArgs;
use crate::error::Result;
use crate::plural::plural;

pub fn run(args: VerifyArgs) -> Result<ExitCode> {
    let start = Instant::now();
    let index = Index::open(&args.index)?;
    let report = index.verify()?;
    crate::outln!(
        "{}: ok ({}, dimension {}, {}; {} checked, {:.1} MB, {}) in {:.2}s",
        args.index.display(),
        plural(index.len(), "item"),
        index.dim(),
        index.metric(),
        report.files.join(", "),
        report.bytes as f64 / 1e6,
        plural(report.edges as usize, "graph link"),
        start.elapsed().as_secs_f64()
    )?;
    if report.deleted + report.log_records > 0 {
        crate::outln!(
            "  changes: generation {}, {}, {} adding {}",
            index.generation(),
            plural(report.deleted, "deleted item"),
            plural(report.log_records, "log record"),
            plural(report.logged_items, "item")
        )?;
    }
    if report.log_torn > 0 {
        // Not an error (a crash during an add or delete leaves it, and that
        // change was never acknowledged), but a damaged last record reads
        // the same, so say so rather than a bare "ok".
        crate::outln!(
            "  warning: {} ends in {} bytes of an unfinished record (a change cut short by a crash, never acknowledged); the next add or delete cuts them off",
            index
                .manifest()
                .log
                .as_deref()
                .map_or_else(|| "the change log".into(), |l| args.index.join(l).display().to_string()),
            report.log_torn
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
