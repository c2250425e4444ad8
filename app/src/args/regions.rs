//! `likeness regions`: faces, landmarks and region boxes from photographs.
use std::path::PathBuf;

use clap::Args;

use crate::face::{Landmarks, DEFAULT_MIN_FACE};

#[derive(Debug, Args)]
pub struct RegionsArgs {
    /// Photographs: an image folder (flat, or one folder per person), a CSV
    /// manifest, or one image file.
    #[arg(long)]
    pub data: PathBuf,
    /// The manifest to write: path,label,x,y,w,h,subject,side, then
    /// face,angle,along,across (the face's id, its roll in degrees, and the
    /// region's size along the face's own axes).
    #[arg(long)]
    pub out: PathBuf,
    /// Which regions, comma-separated [default: all: eye, under_eye, cheek,
    /// brow (each left and right), nose, mouth].
    #[arg(long)]
    pub regions: Option<String>,
    /// The smallest face to find, pixels across (at least 20); smaller
    /// faces are left out. A photo over 2048 px on its long side is scanned
    /// shrunk to 2048, so there the smallest is at least 40/2048 of that
    /// side (160 px of an 8192 px photo).
    #[arg(long, default_value_t = DEFAULT_MIN_FACE)]
    pub min_face: u32,
    /// Write a PNG per photo with the faces, landmarks and boxes drawn (the
    /// subject's left solid, right dashed) into this folder.
    #[arg(long)]
    pub overlay: Option<PathBuf>,
    /// Also cut every face as dlib's aligned 150 px chip (PNG) into this
    /// folder and list them in its chips.csv (path,label: the photo's person
    /// for its largest face, person#k for the others). `train` takes that
    /// manifest, and on aligned chips it fine-tunes dlib's face descriptor.
    #[arg(long)]
    pub chips: Option<PathBuf>,
    /// Write the landmarks as CSV (path,face,point,x,y) for your own geometry.
    #[arg(long)]
    pub landmarks_out: Option<PathBuf>,
    /// The landmark model: dlib5 (default, CC0) or dlib68 (68 points, trained
    /// on iBUG 300-W: not for commercial use).
    #[arg(long, default_value = "dlib5")]
    pub landmarks: Landmarks,
    /// Where the face models are [default: $LIKENESS_CACHE/models/faces,
    /// filled by `make face-models`].
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Skip photos that cannot be read and list them at the end; without it
    /// the first bad photo stops the run with its path.
    #[arg(long)]
    pub skip_bad: bool,
    #[command(flatten)]
    pub photos: super::PhotoArgs,
    /// Replace an existing --out file.
    #[arg(long)]
    pub force: bool,
}
