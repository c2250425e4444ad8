//! `likeness inspect`.
use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// An image folder (root/<class>/<image>), a .csv manifest
    /// (path,label[,x,y,w,h]) or an IDX images file (*-images-idx3-ubyte[.gz]).
    pub source: PathBuf,
    /// Decode every image (and crop every region) to find bad ones.
    #[arg(long)]
    pub check: bool,
    #[command(flatten)]
    pub photos: super::PhotoArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}
