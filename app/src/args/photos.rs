//! `--max-megapixels`, on every command that reads photos: one flag, its
//! default and bound in `read/decode.rs`.
use clap::Args;

use crate::read::decode::{DecodeLimits, DEFAULT_MAX_MEGAPIXELS, MAX_MEGAPIXELS};

#[derive(Debug, Clone, Copy, Args)]
pub struct PhotoArgs {
    /// The largest photo read, in megapixels of 1024×1024 (the default
    /// takes 8192×8192); a larger one is refused as a likely decompression
    /// bomb. At most 1024.
    #[arg(long, default_value_t = DEFAULT_MAX_MEGAPIXELS, value_parser = megapixels)]
    pub max_megapixels: u32,
}

impl PhotoArgs {
    /// The decoder's limits these arguments ask for.
    pub fn limits(&self) -> DecodeLimits {
        DecodeLimits::megapixels(self.max_megapixels)
    }
}

fn megapixels(s: &str) -> std::result::Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if (1..=MAX_MEGAPIXELS).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{s}`: give a whole number of megapixels from 1 to {MAX_MEGAPIXELS} \
             (the default {DEFAULT_MAX_MEGAPIXELS} takes 8192x8192)"
        )),
    }
}
