//! The full check of an open index ([`Index::verify`]): what opening does
//! not read (CRC32s, every graph link, the vectors' values, the item
//! records).

use crate::error::{Error, Result};
use crate::manifest::{GRAPH, META, POSTINGS, VECTORS};

use super::Index;

/// What [`Index::verify`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Files whose size and CRC32 matched the manifest.
    pub files: Vec<String>,
    /// Bytes read.
    pub bytes: u64,
    /// Graph edges checked.
    pub edges: u64,
    /// Deleted items (`deleted.bin` and the log; checked at open).
    pub deleted: usize,
    /// Records of the change log (each CRC-checked at open) and the items
    /// they added.
    pub log_records: usize,
    pub logged_items: usize,
    /// Bytes after the log's last whole record: an append a crash cut
    /// short (never acknowledged; the next writer cuts them off). Not an
    /// error, but worth saying: a damaged last record reads the same.
    pub log_torn: u64,
}

impl Index {
    /// Full check: every file's size and CRC32 against the manifest, then
    /// every row pointer, neighbour id and node list of the graph, the
    /// vectors (finite) and the item records.
    pub fn verify(&self) -> Result<VerifyReport> {
        let live = self.snapshot();
        let mut report = VerifyReport {
            files: Vec::new(),
            bytes: 0,
            edges: 0,
            deleted: live.deleted.len(),
            log_records: live.records,
            logged_items: live.tail_len(),
            log_torn: self.log_torn,
        };
        let compact_name = self.manifest.store.file_name().unwrap_or_default();
        for (name, map) in [
            (GRAPH, Some(&self.graph)),
            (VECTORS, Some(&self.vectors)),
            (META, self.meta.as_ref()),
            (compact_name, self.compact.as_ref().map(|c| &c.0)),
            (POSTINGS, self.postings_file.as_ref().map(|p| &p.0)),
        ] {
            let Some(map) = map else { continue };
            let path = self.file_path(name);
            let entry = self.manifest.file(&self.dir, name)?;
            let actual = crc32fast::hash(map);
            if actual != entry.crc32 {
                return Err(Error::ChecksumMismatch {
                    path,
                    expected: entry.crc32,
                    actual,
                });
            }
            report.files.push(name.to_string());
            report.bytes += map.len() as u64;
        }
        let graph =
            crate::format::graph::GraphView::new(self.file_path(GRAPH), &self.graph, &self.layout)?;
        report.edges = graph.check_links(self.count)?;
        crate::distance::check_finite(self.vectors(), self.dim)
            .map_err(|e| Error::corrupt(self.file_path(VECTORS), e.to_string()))?;
        if let Some((map, h)) = &self.compact {
            let path = self.file_path(compact_name);
            crate::quant::Codes::view(&path, map, h)?
                .check_values()
                .map_err(|r| Error::corrupt(&path, r))?;
        }
        if let (Some(_), Some(labels)) = (&self.postings_file, self.labels()) {
            if let Some(p) = self.postings_view()? {
                p.check(labels)
                    .map_err(|r| Error::corrupt(self.file_path(POSTINGS), r))?;
            }
        }
        self.items()?;
        if self.manifest.files.contains_key(crate::manifest::DELETED) {
            // Its size, CRC32 and ids were checked when the index opened.
            report.files.push(crate::manifest::DELETED.to_string());
        }
        Ok(report)
    }
}
