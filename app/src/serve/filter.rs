//! Label filters of the search routes: `labels` / `exclude_labels` (JSON)
//! and `labels=` / `label=` (query strings), as integers or class names of
//! the index, resolved to one `LabelFilter` for the engine.
use likeness_index::LabelFilter;

use super::{ApiError, Loaded};

/// A label in a filter: an integer, or a class name of the index (as
/// `likeness query --labels` takes them); the engine resolves it.
pub(super) use likeness_index::LabelName;

/// The label `r` names, by the engine's one rule (an unknown name or a
/// number past the classes is a 400 naming them).
pub(super) fn resolve(r: &LabelName, l: &Loaded) -> std::result::Result<i64, ApiError> {
    Ok(l.index.manifest().filter_label(r)?)
}

pub(super) fn filter(
    l: &Loaded,
    only: Option<Vec<LabelName>>,
    except: Option<Vec<LabelName>>,
) -> std::result::Result<Option<LabelFilter>, ApiError> {
    let each = |v: Option<Vec<LabelName>>| {
        v.map(|v| {
            v.into_iter()
                .map(|r| resolve(&r, l))
                .collect::<std::result::Result<Vec<_>, _>>()
        })
        .transpose()
    };
    let (only, except) = (each(only)?, each(except)?);
    let f = match (only, except) {
        (Some(_), Some(_)) => return Err(ApiError::bad("give labels or exclude_labels, not both")),
        (Some(o), None) => Some(LabelFilter::only(o)),
        (None, Some(e)) => Some(LabelFilter::except(e)),
        (None, None) => None,
    };
    if f.is_some() && l.index.labels().is_none() {
        return Err(ApiError::bad("this index has no labels to filter by"));
    }
    Ok(f)
}
