//! Labels as people give them: a number, or a class name of the index
//! (`classes[label]`, recorded when the vectors came from a labelled image
//! folder or manifest). The one home of how `query --labels`, the server's
//! filters and changes, `add`/`update` and Python's `labels=` read them.
//!
//! A filter can only name what exists; a change may name a new class,
//! which is appended to the index's classes.
use serde::Deserialize;

use crate::error::{Error, Result};

/// A label as a person or a JSON body names it: an integer, or a class name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum LabelName {
    /// A label number.
    Int(i64),
    /// A class name (`classes`).
    Name(String),
}

impl LabelName {
    /// `1` or `eye`, as a command line or a query string spells it.
    pub fn parse(token: &str) -> LabelName {
        let t = token.trim();
        t.parse()
            .map_or_else(|_| LabelName::Name(t.to_string()), LabelName::Int)
    }
}

/// The label that `given` names in a filter (`query --labels`, `/search`'s
/// `labels`, Python's `labels=`). With class names, a number is a position
/// among them, and one past them could match nothing, so it is refused as
/// an unknown name is (`label=99` once gave an empty page that looked like
/// no neighbours). Without them, labels are whatever integers the data
/// gave (`build --labels`: any i64, not 0..n), and any integer is taken.
pub fn filter_label(classes: &[String], given: &LabelName) -> Result<i64> {
    match given {
        LabelName::Int(i) => {
            if classes.is_empty() || (0..classes.len() as i64).contains(i) {
                Ok(*i)
            } else {
                Err(Error::Usage(format!(
                    "label {i} is out of range: this index's labels are 0..={} \
                     (its classes {}); give one of them or a class name",
                    classes.len() - 1,
                    classes.join(", ")
                )))
            }
        }
        LabelName::Name(name) => classes
            .iter()
            .position(|c| c == name)
            .map(|p| p as i64)
            .ok_or_else(|| {
                Error::Usage(if classes.is_empty() {
                    format!(
                        "no class `{name}`: this index records no class names; \
                         give its labels as integers"
                    )
                } else {
                    format!(
                        "no class `{name}`: the index's classes are {} (or give labels \
                         0..={} as integers)",
                        classes.join(", "),
                        classes.len() - 1
                    )
                })
            }),
    }
}

/// The label of an item being added or changed (`add`, `update --labels`,
/// `/admin/items`, Python's `add`/`update`): a number must be one of the
/// classes (when the index names them); a name is its class, or a new
/// class appended to `classes`. An index without class names takes
/// numbers only (a name that reads as one, such as `"5"`, is that number).
pub fn item_label(classes: &mut Vec<String>, given: &LabelName) -> Result<i64> {
    match given {
        LabelName::Int(i) => class_number(classes, *i),
        LabelName::Name(name) => class_of_name(classes, name),
    }
}

/// A label a person typed (`update --labels`, the server's `?label=`): a
/// class name of the index, else a class number, else a new class name.
/// A number that is no class is refused: `label=0` once made a new class
/// named "0" where JSON's `0` meant the index's first class.
pub fn typed_label(classes: &mut Vec<String>, text: &str) -> Result<i64> {
    match text.trim().parse::<i64>() {
        Ok(i) if !classes.is_empty() && !classes.iter().any(|c| c == text) => {
            class_number(classes, i)
        }
        _ => class_of_name(classes, text),
    }
}

/// `name`'s class: its position in `classes`, or a new class appended;
/// an index without class names takes an integer only.
fn class_of_name(classes: &mut Vec<String>, name: &str) -> Result<i64> {
    if name.trim().is_empty() {
        return Err(Error::Usage(
            "an empty label: give a class name (or a class number)".into(),
        ));
    }
    if let Some(p) = classes.iter().position(|c| c == name) {
        return Ok(p as i64);
    }
    if classes.is_empty() {
        return name.parse::<i64>().map_err(|_| {
            Error::Usage(format!(
                "label `{name}` is a class name, but this index records none; \
                 give integer labels"
            ))
        });
    }
    classes.push(name.to_string());
    Ok((classes.len() - 1) as i64)
}

/// `i` as one of the index's classes (when it has names).
fn class_number(classes: &[String], i: i64) -> Result<i64> {
    if classes.is_empty() || (0..classes.len() as i64).contains(&i) {
        return Ok(i);
    }
    let names: Vec<String> = classes
        .iter()
        .take(12)
        .enumerate()
        .map(|(k, c)| format!("{k} {c}"))
        .collect();
    Err(Error::Usage(format!(
        "label {i} is no class of this index: its classes are {}{}; give one of them, \
         or a new class by its name",
        names.join(", "),
        if classes.len() > 12 { ", ..." } else { "" }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_label_is_a_number_or_a_class_name_of_the_index() {
        // No class names: any integer, and no name.
        assert_eq!(filter_label(&[], &LabelName::parse("-7")).unwrap(), -7);
        let e = filter_label(&[], &LabelName::parse("eye"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no class `eye`") && e.contains("integers"),
            "{e}"
        );
        let classes = ["brow".to_string(), "eye".to_string()];
        assert_eq!(
            filter_label(&classes, &LabelName::parse(" eye ")).unwrap(),
            1
        );
        assert_eq!(filter_label(&classes, &LabelName::Int(0)).unwrap(), 0);
        let e = filter_label(&classes, &LabelName::Int(2))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("label 2 is out of range") && e.contains("0..=1"),
            "{e}"
        );
        let e = filter_label(&classes, &LabelName::parse("ear"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("the index's classes are brow, eye"), "{e}");
    }

    #[test]
    fn typed_labels_are_names_then_numbers_then_new_names() {
        let mut classes = vec!["cheek".to_string(), "under_eye".to_string()];
        assert_eq!(typed_label(&mut classes, "under_eye").unwrap(), 1);
        assert_eq!(typed_label(&mut classes, "0").unwrap(), 0);
        let e = typed_label(&mut classes, "99").unwrap_err().to_string();
        assert!(e.contains("0 cheek, 1 under_eye"), "{e}");
        assert!(typed_label(&mut classes, "").is_err());
        assert_eq!(classes.len(), 2, "no class made by a refused label");
        assert_eq!(typed_label(&mut classes, "brow").unwrap(), 2);
        // An index without names takes any integer.
        assert_eq!(typed_label(&mut Vec::new(), "-5").unwrap(), -5);
    }

    #[test]
    fn an_item_label_is_a_class_number_or_a_name_new_or_known() {
        let mut classes = vec!["cheek".to_string()];
        assert_eq!(item_label(&mut classes, &LabelName::Int(0)).unwrap(), 0);
        assert!(item_label(&mut classes, &LabelName::Int(3)).is_err());
        let brow = LabelName::Name("brow".into());
        assert_eq!(item_label(&mut classes, &brow).unwrap(), 1);
        assert_eq!(item_label(&mut classes, &brow).unwrap(), 1);
        assert_eq!(classes, ["cheek", "brow"]);
        let mut none = Vec::new();
        assert_eq!(item_label(&mut none, &LabelName::Int(42)).unwrap(), 42);
        let e = item_label(&mut none, &LabelName::Name("eye".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("records none; give integer labels"), "{e}");
        assert!(none.is_empty());
    }
}
