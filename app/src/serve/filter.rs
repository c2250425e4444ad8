//! Label filters of the search routes: `labels` / `exclude_labels` (JSON)
//! and `labels=` / `label=` (query strings), as integers or class names of
//! the index, resolved to one `LabelFilter` for the engine.
use likeness_index::LabelFilter;
use serde::Deserialize;

use super::{ApiError, Loaded};

/// A label in a filter: an integer, or a class name of the index (as
/// `likeness query --labels` takes them).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub(super) enum LabelRef {
    Int(i64),
    Name(String),
}

impl LabelRef {
    /// `1` or `eye`, as a query string gives it.
    pub(super) fn parse(token: &str) -> LabelRef {
        let t = token.trim();
        t.parse()
            .map_or_else(|_| LabelRef::Name(t.to_string()), LabelRef::Int)
    }

    pub(super) fn resolve(self, l: &Loaded) -> std::result::Result<i64, ApiError> {
        match self {
            LabelRef::Int(i) => {
                // With a class list, a label is a position in it, and one
                // past it can match nothing: said, as an unknown name is
                // (`label=99` gave an empty page that looked like no
                // neighbours). Without one, labels are whatever integers
                // the data gave (`build --labels`: any i64, not 0..n), so
                // there is no range to check and any integer is allowed.
                let classes = &l.index.manifest().classes;
                if classes.is_empty() || (0..classes.len() as i64).contains(&i) {
                    Ok(i)
                } else {
                    Err(ApiError::bad(format!(
                        "label {i} is out of range: this index's labels are 0..={} \
                         (its classes {}); give one of them or a class name",
                        classes.len() - 1,
                        classes.join(", ")
                    )))
                }
            }
            LabelRef::Name(name) => {
                let m = l.index.manifest();
                m.class_label(&name).ok_or_else(|| {
                    ApiError::bad(format!(
                        "no class `{name}`: the index's classes are {}",
                        if m.classes.is_empty() {
                            "unnamed (give integer labels)".to_string()
                        } else {
                            m.classes.join(", ")
                        }
                    ))
                })
            }
        }
    }
}

pub(super) fn filter(
    l: &Loaded,
    only: Option<Vec<LabelRef>>,
    except: Option<Vec<LabelRef>>,
) -> std::result::Result<Option<LabelFilter>, ApiError> {
    let resolve = |v: Option<Vec<LabelRef>>| {
        v.map(|v| {
            v.into_iter()
                .map(|r| r.resolve(l))
                .collect::<std::result::Result<Vec<_>, _>>()
        })
        .transpose()
    };
    let (only, except) = (resolve(only)?, resolve(except)?);
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
