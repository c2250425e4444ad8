//! What the torch half lends the torch-free commands: a network that turns
//! images into vectors, and a way to load the one an index was built with.
//! `query --image` and `serve` call them through these traits, so each
//! command stays one file in this crate while libtorch stays out of it.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::DynamicImage;
use likeness_index::Index;
use rayon::prelude::*;

use crate::error::Result;
use crate::read::{decode, DecodeLimits, Region};

/// A network that embeds decoded images.
pub trait ImageEmbedder: Send + Sync {
    /// One vector per image, in order, from one forward pass. An `Err` fails
    /// every image of the call (the network itself failed).
    fn embed_images(&self, images: &[&DynamicImage]) -> std::result::Result<Vec<Vec<f32>>, String>;
    /// [`ImageEmbedder::embed_images`], and each image's grade by the
    /// model's score read-out where it has one (from the same forward pass).
    fn embed_and_grade(&self, images: &[&DynamicImage]) -> std::result::Result<Graded, String> {
        Ok(Graded {
            vectors: self.embed_images(images)?,
            grades: None,
        })
    }
    /// Fingerprint of the model (compared with the index's).
    fn fingerprint(&self) -> String;
}

/// Vectors of images, and their grades where the model has a score read-out.
pub struct Graded {
    pub vectors: Vec<Vec<f32>>,
    pub grades: Option<Vec<f32>>,
}

/// Loads the model an index records (or `explicit`), refusing one whose
/// fingerprint or dimension differs from the index's.
pub trait ModelLoader {
    fn load(&self, index: &Index, explicit: Option<&Path>) -> Result<LoadedModel>;
}

/// A loaded model and the folder it came from.
pub struct LoadedModel {
    pub embedder: Arc<dyn ImageEmbedder>,
    pub dir: PathBuf,
}

/// One image's vector, and its grade where the model has a score read-out.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    pub vector: Vec<f32>,
    pub grade: Option<f32>,
    /// The image embedded (decoded, cropped to its box where one was
    /// given), handed on rather than decoded twice: `/search/image` looks
    /// for faces in a whole photo.
    pub image: DynamicImage,
}

/// Encoded images (request bodies), each cropped to its `x, y, w, h` box
/// when one is given: decoded in parallel with the decoder's limits, then
/// one forward pass over those that decoded. One answer per image, in order,
/// so that a bad image fails only its own (its message is the client's fault).
pub fn embed_encoded(
    embedder: &dyn ImageEmbedder,
    images: &[(&[u8], Option<[u32; 4]>)],
    limits: &DecodeLimits,
) -> Vec<std::result::Result<Embedded, String>> {
    let path = Path::new("<request body>");
    let decoded: Vec<Result<DynamicImage>> = images
        .par_iter()
        .map(|(bytes, region)| {
            let image = decode::decode_bytes(bytes, path, limits)?;
            match region {
                Some([x, y, w, h]) => decode::crop(
                    &image,
                    Region {
                        x: *x,
                        y: *y,
                        w: *w,
                        h: *h,
                    },
                    path,
                ),
                None => Ok(image),
            }
        })
        .collect();
    let good: Vec<&DynamicImage> = decoded.iter().filter_map(|d| d.as_ref().ok()).collect();
    let graded = if good.is_empty() {
        Ok(Graded {
            vectors: Vec::new(),
            grades: None,
        })
    } else {
        embedder.embed_and_grade(&good)
    };
    let (mut rows, mut grades) = match graded {
        Ok(g) => (g.vectors.into_iter(), g.grades.map(Vec::into_iter)),
        Err(e) => return images.iter().map(|_| Err(e.clone())).collect(),
    };
    decoded
        .into_iter()
        .map(|d| match d {
            Ok(image) => {
                let vector = rows
                    .next()
                    .ok_or_else(|| "the forward pass returned too few rows".to_string())?;
                let grade = grades.as_mut().and_then(Iterator::next);
                Ok(Embedded {
                    vector,
                    grade,
                    image,
                })
            }
            Err(e) => Err(e.to_string()),
        })
        .collect()
}
