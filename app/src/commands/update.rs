//! `likeness update`: labels or scores of items; vectors untouched.
use std::process::ExitCode;

use likeness_index::Writer;

use crate::args::UpdateArgs;
use crate::error::{Error, Result};
use crate::plural::plural;

pub fn run(args: UpdateArgs) -> Result<ExitCode> {
    let mut writer = Writer::open(&args.index)?;
    let n = args.ids.len();
    let spread = |what: &str, given: usize| -> Result<()> {
        if given != 0 && given != 1 && given != n {
            return Err(Error::Usage(format!(
                "{n} ids but {given} {what}: give one per id, or one for all"
            )));
        }
        Ok(())
    };
    spread("labels", args.labels.len())?;
    spread("scores", args.scores.len())?;
    let pick = |i: usize, len: usize| if len == 1 { 0 } else { i };
    let mut classes = writer.index().manifest().classes.clone();
    let grew_from = classes.len();
    let labels: Option<Vec<i64>> = if args.labels.is_empty() {
        None
    } else {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let name = &args.labels[pick(i, args.labels.len())];
            out.push(typed_label(&mut classes, name)?);
        }
        Some(out)
    };
    let scores: Option<Vec<f32>> = (!args.scores.is_empty()).then(|| {
        (0..n)
            .map(|i| args.scores[pick(i, args.scores.len())])
            .collect()
    });
    let new_classes = (classes.len() > grew_from).then_some(&classes[..]);
    let report =
        writer.update_with(&args.ids, labels.as_deref(), scores.as_deref(), new_classes)?;
    crate::outln!(
        "updated {} of {} (generation {}, {:.2}s){}",
        plural(n, "item"),
        args.index.display(),
        report.generation,
        report.seconds,
        match classes.len() - grew_from {
            0 => String::new(),
            k => format!("; {}", plural(k, "new class name")),
        }
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The label of `name`: a class name of the index, an integer (an index
/// without class names), or a new class name appended to `classes`.
pub fn label_for(classes: &mut Vec<String>, name: &str) -> Result<i64> {
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
                "label `{name}`: this index has integer labels without class names; give an integer"
            ))
        });
    }
    classes.push(name.to_string());
    Ok((classes.len() - 1) as i64)
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
        _ => label_for(classes, text),
    }
}

/// `i` as one of the index's classes (when it has names).
pub fn class_number(classes: &[String], i: i64) -> Result<i64> {
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
}
