//! The searches [`crate::Index::query`] dispatches to, once it has checked
//! the request ([`crate::KnnQuery::validate`]): the filter planner, the
//! graph search of a batch of rows (in place, [`crate::hnsw::search`]) and
//! the exact search over the mapped vectors. Nothing here checks the
//! request again.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::hnsw::search::Searcher;
use crate::live::Live;
use crate::manifest::{GRAPH, POSTINGS};
use crate::neighbours::Neighbours;
use crate::postings::{LabelFilter, Plan, PlanChoice, PlanKind, SearchOptions};
use crate::quant::Codes;

use super::Index;

impl Index {
    /// The plan of a search for `k` items with `filter` under `options`
    /// (what `query` and `/stats` report). Without a filter: the graph.
    pub(crate) fn plan(
        &self,
        k: usize,
        filter: Option<&LabelFilter>,
        options: &SearchOptions,
    ) -> Result<Plan> {
        let exact_below = options
            .exact_below
            .unwrap_or_else(|| crate::postings::default_exact_below(self.count));
        let Some(f) = filter else {
            return Ok(Plan {
                kind: PlanKind::Graph,
                passing: None,
                exact_below,
                unknown_labels: Vec::new(),
                ef: None,
                rerank: None,
            });
        };
        // The request was validated (a filter needs labels), so the lists
        // exist; `None` here would be a bug of the caller.
        let Some(p) = self.postings_view()? else {
            return Err(Error::InvalidInput(
                "this index has no labels to filter by".into(),
            ));
        };
        let (passing, unknown_labels) = p
            .estimate(f, self.count)
            .map_err(|r| Error::corrupt(self.file_path(POSTINGS), r))?;
        let kind = match options.plan {
            PlanChoice::Exact => PlanKind::Exact,
            PlanChoice::Graph => PlanKind::FilteredGraph,
            PlanChoice::Auto if passing <= exact_below.max(k) => PlanKind::Exact,
            PlanChoice::Auto => PlanKind::FilteredGraph,
        };
        Ok(Plan {
            kind,
            passing: Some(passing),
            exact_below,
            unknown_labels,
            ef: None,
            rerank: None,
        })
    }

    /// What a search of this index reads, with the posting lists when
    /// `postings` (the exact plan of a filter).
    fn searcher<'a>(
        &'a self,
        options: &SearchOptions,
        postings: bool,
        live: &'a Live,
    ) -> Result<Searcher<'a>> {
        let graph =
            crate::format::graph::GraphView::new(self.file_path(GRAPH), &self.graph, &self.layout)?;
        let codes = match &self.compact {
            Some((map, h)) => {
                let name = self.manifest.store.file_name().unwrap_or_default();
                Some(Codes::view(&self.file_path(name), map, h)?)
            }
            None => None,
        };
        Ok(Searcher {
            dir: &self.dir,
            graph,
            vectors: self.vectors(),
            labels: self.labels(),
            codes,
            postings: if postings {
                self.postings_view()?
            } else {
                None
            },
            count: self.count,
            dim: self.dim,
            metric: self.metric,
            kernel4: self.kernel4,
            store: self.manifest.store,
            quantizer: self.manifest.quantizer.as_ref(),
            rerank: options.rerank,
            deleted: (!live.deleted.is_empty()).then_some(&live.deleted),
        })
    }

    /// The `k` nearest items of each row of `queries` (row-major, checked),
    /// by the graph with beam width `ef` (raised to `k`), or by the exact
    /// scan of the passing items when `plan` says so. One row runs on the
    /// calling thread, more on rayon.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn search_batch(
        &self,
        queries: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&LabelFilter>,
        plan: &Plan,
        options: &SearchOptions,
        live: &Live,
    ) -> Result<Neighbours> {
        let exact_scan = filter.is_some() && plan.kind == PlanKind::Exact;
        let searcher = self.searcher(options, exact_scan, live)?;
        let nq = queries.len() / self.dim;
        let mut out = Neighbours::new(nq, k);
        let rows: Vec<_> = out.rows_mut().collect();
        let run = |(q, (ids, dists)): (usize, (&mut [i64], &mut [f32]))| {
            let query = &queries[q * self.dim..(q + 1) * self.dim];
            searcher.search_row(query, q, k, ef, filter, ids, dists)
        };
        if nq <= 1 {
            rows.into_iter().enumerate().try_for_each(run)?;
        } else {
            rows.into_par_iter().enumerate().try_for_each(run)?;
        }
        Ok(out)
    }

    /// Exact k-NN of each row of `queries` (row-major, checked) over the
    /// mapped vectors (brute force on rayon), with the same filter; deleted
    /// items are never results.
    pub(crate) fn search_exact_batch(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<&LabelFilter>,
        live: &Live,
    ) -> Result<Neighbours> {
        let mut q = queries.to_vec();
        self.metric.normalize_rows(&mut q, self.dim)?;
        let labels = self.labels();
        if filter.is_none() && live.deleted.is_empty() {
            return crate::exact::search_prepared(
                self.vectors(),
                &q,
                self.dim,
                k,
                self.metric,
                false,
            );
        }
        crate::exact::search_filtered(self.vectors(), &q, self.dim, k, self.metric, &|i| {
            !live.deleted.contains(i as usize)
                && match (filter, labels) {
                    (Some(f), Some(labels)) => labels.get(i as usize).is_some_and(|&l| f.allows(l)),
                    _ => true,
                }
        })
    }

    /// Merges the items added since the files (searched exactly: the tail
    /// stays below [`crate::writer::FOLD_AT`] items) into each row's
    /// results, keeping the `k` nearest.
    pub(crate) fn merge_tail(
        &self,
        queries: &[f32],
        found: Neighbours,
        filter: Option<&LabelFilter>,
        live: &Live,
    ) -> Result<Neighbours> {
        let (dim, k, base) = (self.dim, found.k(), live.base);
        let mut q = queries.to_vec();
        self.metric.normalize_rows(&mut q, dim)?;
        let dist = self.metric.kernel();
        let passes = |r: usize| {
            let id = base + r;
            !live.deleted.contains(id)
                && match (filter, &live.tail_labels) {
                    (Some(f), Some(l)) => l.get(r).is_some_and(|&l| f.allows(l)),
                    _ => true,
                }
        };
        let nq = found.queries();
        let merge_row = |qi: usize| -> Vec<(f32, i64)> {
            let query = &q[qi * dim..(qi + 1) * dim];
            let mut row: Vec<(f32, i64)> = found
                .distances(qi)
                .iter()
                .zip(found.ids(qi))
                .filter(|(_, &i)| i >= 0)
                .map(|(&d, &i)| (d, i))
                .collect();
            for (r, v) in live.tail.chunks_exact(dim).enumerate() {
                if passes(r) {
                    row.push((dist(query, v), (base + r) as i64));
                }
            }
            row.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            row.resize(
                k.max(row.len()),
                (f32::INFINITY, crate::neighbours::MISSING),
            );
            row.truncate(k);
            row
        };
        // Rows in parallel, as the graph search runs them.
        let rows: Vec<Vec<(f32, i64)>> = if nq <= 1 {
            (0..nq).map(merge_row).collect()
        } else {
            (0..nq).into_par_iter().map(merge_row).collect()
        };
        let ids = rows.iter().flatten().map(|&(_, i)| i).collect();
        let dists = rows.iter().flatten().map(|&(d, _)| d).collect();
        Neighbours::from_parts(nq, k, ids, dists)
            .ok_or_else(|| Error::InvalidInput("result shape".into()))
    }
}
