//! IDX files (the MNIST format) as a [`Dataset`]: an images file and the
//! labels file beside it. The reader itself is the app crate's
//! (`likeness_app::read::idx`), shared with the server's thumbnails.
use std::path::Path;
use std::sync::Arc;

pub use likeness_app::read::idx::{
    is_idx_images_name, labels_path, read_array, read_images, IdxImages, FASHION_MNIST_CLASSES,
};

use super::{Dataset, Item, SourceKind};
use crate::error::Result;

/// Opens an images file and the labels file beside it.
pub fn open(images_path: &Path) -> Result<Dataset> {
    let store = read_images(images_path)?;
    let n = store.len();
    let lpath = labels_path(images_path);
    let labels = read_array(&lpath)?;
    if labels.dims.len() != 1 || labels.dims[0] != n {
        return Err(likeness_app::Error::Idx {
            path: lpath,
            reason: format!(
                "expected {n} labels (one per image) but the header says {:?}",
                labels.dims
            ),
        }
        .into());
    }
    let nclasses = labels
        .data
        .iter()
        .copied()
        .max()
        .map_or(0, |m| m as usize + 1);
    let fashion = images_path
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n.to_string_lossy().contains("fashion"));
    let classes: Vec<String> = (0..nclasses)
        .map(|c| {
            if fashion && nclasses == 10 {
                FASHION_MNIST_CLASSES[c].to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    let items = labels
        .data
        .iter()
        .enumerate()
        .map(|(row, &l)| Item {
            label: l as usize,
            path: images_path.to_path_buf(),
            region: None,
            row: Some(row),
            line: None,
            ..Item::default()
        })
        .collect();
    Dataset::from_parts(
        SourceKind::Idx,
        images_path.to_path_buf(),
        classes,
        items,
        Some(Arc::new(store)),
    )
}
