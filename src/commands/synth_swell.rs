//! `likeness synth-swell`: write the synthetic graded-regions set
//! ([`crate::data::swell`]); `make data` runs it into the cache.
use std::process::ExitCode;

use likeness_app::args::SwellArgs;

use crate::data::swell;
use crate::error::Result;

/// `likeness synth-swell`.
pub fn run(args: SwellArgs) -> Result<ExitCode> {
    let johns = args.johns.unwrap_or_else(crate::cache::johns_dir);
    let out = args.out.unwrap_or_else(crate::cache::swell_dir);
    let set = swell::generate(&johns, &out, args.seed, args.variants.max(1))?;
    likeness_app::outln!(
        "wrote {} SYNTHETIC images ({} graded regions) into {}; test.csv holds {}, train.csv the others",
        set.images,
        set.regions,
        out.display(),
        set.held_out
    )?;
    Ok(ExitCode::SUCCESS)
}
