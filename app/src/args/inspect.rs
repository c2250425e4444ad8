//! `likeness inspect`.
use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("input").required(true).args(["source", "data"])))]
pub struct InspectArgs {
    /// An image folder (root/<class>/<image>), a .csv manifest
    /// (path,label[,x,y,w,h]) or an IDX images file (*-images-idx3-ubyte[.gz]).
    pub source: Option<PathBuf>,
    /// The same as SOURCE, spelt as the other commands take it (`inspect
    /// --data X` used to be refused).
    #[arg(long, value_name = "SOURCE")]
    pub data: Option<PathBuf>,
    /// Decode every image (and crop every region) to find bad ones.
    #[arg(long)]
    pub check: bool,
    #[command(flatten)]
    pub photos: super::PhotoArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

impl InspectArgs {
    /// The data source, given either way (clap requires exactly one).
    pub fn source(&self) -> &Path {
        self.source
            .as_deref()
            .or(self.data.as_deref())
            .expect("clap requires SOURCE or --data")
    }
}
