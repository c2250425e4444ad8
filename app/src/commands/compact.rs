//! `likeness compact`: every change folded into one clean graph.
use std::process::ExitCode;

use likeness_index::Writer;

use crate::args::CompactArgs;
use crate::error::Result;

pub fn run(threads: usize, args: CompactArgs) -> Result<ExitCode> {
    let mut writer = Writer::open(&args.index)?;
    writer.threads(threads);
    let r = writer.compact()?;
    crate::outln!(
        "compacted {}: {} live items in one graph (generation {}; {} deleted ids stay retired) in {:.2}s",
        args.index.display(),
        r.live,
        r.generation,
        r.deleted,
        r.seconds
    )?;
    Ok(ExitCode::SUCCESS)
}
