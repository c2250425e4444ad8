//! Results as they are shown to people and programs: [`Hit`].

use crate::format::meta::{ItemInfo, ItemPairing, Side};
use crate::neighbours::Neighbours;

use super::Index;

/// One result of a query as it is shown to people and programs (`query`
/// tables and JSON, `serve` answers).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Hit {
    /// 1 for the nearest.
    pub rank: usize,
    pub id: i64,
    pub distance: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<i64>,
    /// The label's name, when the index records class names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Source of the item (image path; `path#row` for an IDX row).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Region of the source, `[x0, y0, x1, y1]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<[f32; 4]>,
    /// The item's score, when the index has scores and this item one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// The face or person the item is a region of, where the index records
    /// it (`"p2"`): a left and a right region of one face share it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The subject's own side of the region (`"left"` or `"right"`), where
    /// the index records it: users compare a face's left and right regions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub side: Option<Side>,
}

impl Index {
    /// The hits of query row `q` of `found`, with labels and class names
    /// from this index, paths and regions from `items` (its decoded
    /// [`Index::items`], when the caller has them) and subjects and sides
    /// from `pairings` (its decoded [`Index::pairings`], likewise). Both are
    /// decoded once by the caller and kept, not per query.
    pub fn hits(
        &self,
        items: Option<&[ItemInfo]>,
        pairings: Option<&[ItemPairing]>,
        found: &Neighbours,
        q: usize,
    ) -> Vec<Hit> {
        let manifest = self.manifest();
        found
            .ids(q)
            .iter()
            .zip(found.distances(q))
            .enumerate()
            .filter(|(_, (&id, _))| id >= 0)
            .map(|(r, (&id, &distance))| {
                let i = id as usize;
                let label = self.label_of(i);
                let info = items.and_then(|it| it.get(i));
                let pairing = pairings.and_then(|p| p.get(i));
                Hit {
                    rank: r + 1,
                    id,
                    distance,
                    label,
                    class: label
                        .and_then(|l| manifest.class_name(l))
                        .map(str::to_owned),
                    path: info.map(|i| i.source.clone()).filter(|s| !s.is_empty()),
                    region: info.and_then(|i| i.region),
                    score: self.score_of(i),
                    subject: pairing.and_then(|p| p.subject.clone()),
                    side: pairing.and_then(|p| p.side),
                }
            })
            .collect()
    }
}
