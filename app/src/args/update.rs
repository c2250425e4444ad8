//! `likeness update`: labels or scores of items, without touching vectors.
use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("what").required(true).multiple(true).args(["labels", "scores"]))]
pub struct UpdateArgs {
    /// Index directory (changed in place).
    #[arg(long)]
    pub index: PathBuf,
    /// Ids to change, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub ids: Vec<u64>,
    /// New labels, comma-separated: one per id, or one for all. Class names
    /// (a new name becomes a new class) or class numbers (any integer on an
    /// index without class names).
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// New scores, comma-separated: one per id, or one for all (`nan` = none).
    #[arg(long, value_delimiter = ',')]
    pub scores: Vec<f32>,
}
