//! `likeness verify`: every file of an index checked (sizes, CRC32s, links).
use std::process::ExitCode;
use std::time::Instant;

use likeness_index::Index;

use crate::args::VerifyArgs;
use crate::error::Result;

pub fn run(args: VerifyArgs) -> Result<ExitCode> {
    let start = Instant::now();
    let index = Index::open(&args.index)?;
    let report = index.verify()?;
    crate::outln!(
        "{}: ok ({} items, dimension {}, {}; {} checked, {:.1} MB, {} graph links) in {:.2}s",
        args.index.display(),
        index.len(),
        index.dim(),
        index.metric(),
        report.files.join(", "),
        report.bytes as f64 / 1e6,
        report.edges,
        start.elapsed().as_secs_f64()
    )?;
    if report.deleted + report.log_records > 0 {
        crate::outln!(
            "  changes: generation {}, {} deleted items, {} log records adding {} items",
            index.generation(),
            report.deleted,
            report.log_records,
            report.logged_items
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
