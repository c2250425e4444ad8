//! `likeness update`: labels or scores of items; vectors untouched.
use std::process::ExitCode;

use likeness_index::labels::typed_label;
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
