//! `likeness compact`: every change folded into one clean graph.
use std::process::ExitCode;

use likeness_index::Writer;

use crate::args::CompactArgs;
use crate::error::Result;
use crate::plural::plural;

pub fn run(threads: usize, args: CompactArgs) -> Result<ExitCode> {
    let mut writer = Writer::open(&args.index)?;
    writer.threads(threads);
    let r = writer.compact()?;
    crate::outln!(
        "compacted {}: {} in one graph (generation {}; {} retired) in {:.2}s",
        args.index.display(),
        plural(r.live, "live item"),
        r.generation,
        match r.deleted {
            1 => "1 deleted id stays".to_string(),
            n => format!("{n} deleted ids stay"),
        },
        r.seconds
    )?;
    Ok(ExitCode::SUCCESS)
}
