//! `likeness eval`: Recall@K, MAP@R and the ANN agreement of an index,
//! leave-one-out or with labelled query images.

use std::process::ExitCode;
use std::time::Instant;

use likeness_app::args::EvalArgs;
use likeness_index::Index;
use tch::Device;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gallery::{self, EmbedOptions};
use crate::torch_models::model_for_index;

/// What `likeness eval` measured (`eval.json`); computed by the index crate,
/// which the Python package calls too.
pub use likeness_index::eval::EvalReport;

/// `likeness eval`.
pub fn run(device: Device, args: EvalArgs) -> Result<ExitCode> {
    let start = Instant::now();
    if args.ks.is_empty() || args.ks.contains(&0) {
        return Err(Error::Invalid(
            "--ks must list positive K values, e.g. 1,2,4,8".into(),
        ));
    }
    let index = Index::open(&args.index)?;
    // Checked here too, before a model is loaded and queries embedded.
    if index.labels().is_none() {
        return Err(Error::Invalid(format!(
            "{} has no labels; evaluation needs an index built with labels (`likeness index`, or `build --labels`)",
            args.index.display()
        )));
    }
    if args.score && args.queries.is_some() {
        return Err(Error::Invalid(
            "--score predicts the index's own items leave-one-out; drop --queries (index the queries with their scores instead)".into(),
        ));
    }
    if args.score && index.scores().is_none() {
        return Err(Error::Invalid(format!(
            "{} has no scores; --score needs an index of a manifest with a `score` column (header `path,label,score,...`)",
            args.index.display()
        )));
    }
    let mut report = match &args.queries {
        None => likeness_index::eval::evaluate_index(&index, None, &args.ks, args.ef)?,
        Some(src) => {
            let (net, _card, _dir) = model_for_index(&index, args.model.as_deref(), device)?;
            let ds = Dataset::open(src)?.with_limits(args.photos.limits());
            if ds.is_empty() {
                return Err(Error::EmptyDataset {
                    path: ds.root().to_path_buf(),
                    hint: "no query images".into(),
                });
            }
            // Map the query classes onto the index's labels by name; a class
            // the index lacks gets a label no item has (its queries count
            // as having nothing to find), and none in common is a mistake.
            let manifest = index.manifest();
            let map: Vec<i64> = ds
                .classes()
                .iter()
                .map(|c| manifest.class_label(c).unwrap_or(-1 - 1_000_000))
                .collect();
            let unknown: Vec<&str> = ds
                .classes()
                .iter()
                .filter(|c| manifest.class_label(c).is_none())
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                let theirs = manifest
                    .classes
                    .iter()
                    .take(20)
                    .cloned()
                    .collect::<Vec<_>>();
                let what = format!(
                    "the query classes {} are not among the index's ({}{})",
                    unknown
                        .iter()
                        .take(20)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", "),
                    theirs.join(", "),
                    if manifest.classes.len() > 20 {
                        ", ..."
                    } else {
                        ""
                    }
                );
                if unknown.len() == ds.classes().len() {
                    return Err(Error::Invalid(format!(
                        "{what}: no query could find its class; label the queries with the \
                         index's class names"
                    )));
                }
                eprintln!("warning: {what}; their queries have nothing to find");
            }
            let all: Vec<usize> = (0..ds.len()).collect();
            let mut q = Vec::new();
            let mut ql = Vec::new();
            let bar = likeness_app::progress::bar(ds.len() as u64, "embedding");
            let opts = EmbedOptions {
                batch: args
                    .batch
                    .unwrap_or_else(|| likeness_app::args::default_batch(device.is_cuda())),
                skip_bad: args.skip_bad,
                ..EmbedOptions::default()
            };
            let res = gallery::embed_stream(&net, &ds, &all, &opts, Some(&bar), |emb, kept| {
                q.extend_from_slice(emb);
                ql.extend(kept.iter().map(|&i| map[ds.items()[i].label]));
                Ok(())
            });
            bar.finish_and_clear();
            let stats = res?;
            if !stats.skipped.is_empty() {
                eprintln!(
                    "{} skipped as unusable:",
                    likeness_app::plural::plural(stats.skipped.len(), "query image")
                );
                for k in &stats.skipped {
                    eprintln!("  {}: {}", k.path.display(), k.reason);
                }
            }
            likeness_index::eval::evaluate_index(&index, Some((&q, &ql)), &args.ks, args.ef)?
        }
    };
    if args.score {
        warn_if_trained_on(&index, args.model.as_deref());
        report = report.with_score(likeness_index::score::evaluate_index_scores(
            &index,
            args.score_k,
        )?);
    }
    // The whole command, embedding included.
    report.seconds = start.elapsed().as_secs_f64();
    let out = args.out.clone().unwrap_or_else(|| {
        let mut name = args
            .index
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "index".into());
        name.push("-eval");
        args.index.with_file_name(name)
    });
    crate::error::create_dir(&out)?;
    let json = serde_json::to_vec_pretty(&report).map_err(|e| Error::Invalid(e.to_string()))?;
    likeness_index::atomic_write(&out.join("eval.json"), |f| {
        use std::io::Write;
        f.write_all(&json)
    })?;
    likeness_app::plot::eval_bars(&out.join("eval.png"), &report)?;
    if let Some(sr) = &report.score {
        let title = format!(
            "{}: K={}, MAE {:.3}, Spearman {:.3}",
            args.index
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sr.k,
            sr.overall.knn.mae,
            sr.overall.knn.spearman
        );
        likeness_app::plot::score_scatter(&out.join("score.png"), &sr.pairs, &title)?;
    }
    if args.json {
        let line = serde_json::to_string(&report).map_err(|e| Error::Invalid(e.to_string()))?;
        likeness_app::outln!("{line}")?;
    } else {
        likeness_app::outln!("{}", render_eval(&report))?;
        if let Some(sr) = &report.score {
            likeness_app::outln!("\n{}", render_score(sr))?;
        }
        eprintln!(
            "wrote {} and {}",
            out.join("eval.json").display(),
            out.join("eval.png").display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The graded rows a model trained on, as (canonical source, region)
/// keys, read from the data its `model.json` records: what `eval --score`
/// and `asymmetry` warn about, since figures over them measure what the
/// model remembers (40 made-up grades of johns regions, trained on and
/// indexed, gave Spearman 0.93 and MAE 0.05 against the global mean's 0.25;
/// 48 made-up grades of 12 photos' cheeks and under-eyes gave `asymmetry`
/// a read-out ROC AUC of 1.0).
pub(crate) struct TrainedRows {
    pub data: std::path::PathBuf,
    keys: std::collections::HashSet<(std::path::PathBuf, Option<[i64; 4]>)>,
}

impl TrainedRows {
    /// `None` for a model without a score read-out, or whose recorded
    /// training data cannot be read (moved or deleted): nothing to say.
    pub fn of(model: &std::path::Path) -> Option<TrainedRows> {
        let card = crate::train::output::read_card(model).ok()?;
        card.score_norm.as_ref()?;
        let ds = Dataset::open(&card.data).ok()?;
        let keys = (0..ds.len())
            .filter(|&i| ds.items()[i].score.is_some())
            .map(|i| {
                let info = gallery::item_info(&ds, i);
                Self::key(std::path::Path::new(&info.source), info.region)
            })
            .collect();
        Some(TrainedRows {
            data: card.data,
            keys,
        })
    }

    fn key(
        path: &std::path::Path,
        region: Option<[f32; 4]>,
    ) -> (std::path::PathBuf, Option<[i64; 4]>) {
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        (path, region.map(|r| r.map(|v| v.round() as i64)))
    }

    /// Whether the row of `source` (and `region`, `[x0, y0, x1, y1]`) is
    /// one the model trained on.
    pub fn contains(&self, source: &str, region: Option<[f32; 4]>) -> bool {
        self.keys
            .contains(&Self::key(std::path::Path::new(source), region))
    }
}

/// `eval --score` on an index of the graded rows its model trained on
/// measures what the model remembers ([`TrainedRows`]). Said, with how many
/// such rows there are, when the model's recorded training data can be read.
fn warn_if_trained_on(index: &Index, explicit: Option<&std::path::Path>) {
    let Some(dir) = explicit
        .map(std::path::Path::to_path_buf)
        .or_else(|| index.manifest().model_dir.as_ref().map(Into::into))
    else {
        return;
    };
    let Some(trained) = TrainedRows::of(&dir) else {
        return;
    };
    let (Some(scores), Ok(items)) = (index.scores(), index.items()) else {
        return;
    };
    let scored: Vec<_> = items
        .iter()
        .zip(scores)
        .filter(|(_, s)| s.is_finite())
        .collect();
    let seen = scored
        .iter()
        .filter(|(it, _)| trained.contains(&it.source, it.region))
        .count();
    if seen > 0 {
        eprintln!(
            "warning: {seen} of the {} scored items of {} are graded rows that {} trained on \
             ({}): their neighbours' grades were learnt, so the score figures below measure \
             what the model remembers, not how it grades new regions; index graded rows it did \
             not train on (e.g. train on some photographs' grades, index the others')",
            scored.len(),
            index.dir().display(),
            dir.display(),
            trained.data.display()
        );
    }
}

fn render_eval(r: &EvalReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {}, gallery {}, {}{}",
        r.index,
        likeness_app::plural::plural(r.queries, "query"),
        r.gallery,
        r.protocol,
        if r.lone_queries > 0 {
            format!(
                " ({} without another item of their label left out)",
                likeness_app::plural::plural(r.lone_queries, "query")
            )
        } else {
            String::new()
        }
    );
    let mut head = format!("{:<20} {:>7}", "class", "queries");
    for k in &r.ks {
        let _ = write!(head, " {:>8}", format!("R@{k}"));
    }
    let _ = write!(head, " {:>8} {:>8} {:>8}", "P@1", "R-Prec", "MAP@R");
    let _ = writeln!(s, "{head}");
    let row = |name: &str, v: &serde_json::Value| {
        let mut line = format!("{:<20} {:>7}", name, v["queries"]);
        for k in &r.ks {
            let _ = write!(
                line,
                " {:>8.4}",
                v[format!("recall@{k}")].as_f64().unwrap_or(f64::NAN)
            );
        }
        for key in ["precision@1", "r_precision", "map@r"] {
            let _ = write!(line, " {:>8.4}", v[key].as_f64().unwrap_or(f64::NAN));
        }
        line
    };
    for c in &r.per_class {
        let name = c["class"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| c["label"].to_string());
        let _ = writeln!(s, "{}", row(&name, c));
    }
    let mut all = serde_json::Value::Object(r.scores.clone());
    all["queries"] = r.queries.into();
    let _ = writeln!(s, "{}", row("all", &all));
    for (k, v) in &r.scores {
        if k.starts_with("ann_recall@") {
            let _ = write!(
                s,
                "ANN agreement with exact search ({k}, ef {}): {:.4}",
                r.ef,
                v.as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    s
}

/// Below this many scored items a row's correlations are marked as
/// meaning little: at 10 items Spearman's ρ must pass 0.65 to differ from
/// chance (two-sided 5%), and at 5 or fewer no ρ does (its critical value
/// is 1); a label with 3 graded items once showed `Spearman 1.0000`.
pub const FEW_SCORED: usize = 10;

/// The `--score` table: each label and all, the prediction beside both
/// baselines; correlations over fewer than [`FEW_SCORED`] items marked `*`.
pub fn render_score(r: &likeness_index::score::ScoreReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "score prediction, leave-one-out ({} scored items, K={}: {})",
        r.scored, r.k, r.weighting
    );
    let _ = writeln!(
        s,
        "{:<14} {:<12} {:>6} {:>8} {:>8} {:>9} {:>9}",
        "label", "predictor", "items", "MAE", "RMSE", "Pearson", "Spearman"
    );
    let f = |v: f64| {
        if v.is_finite() {
            format!("{v:.4}")
        } else {
            "-".into()
        }
    };
    let mut rows: Vec<(String, &likeness_index::score::ScoreRow)> = r
        .per_label
        .iter()
        .map(|l| {
            (
                l.class.clone().unwrap_or_else(|| l.label.to_string()),
                &l.scores,
            )
        })
        .collect();
    rows.push(("all".into(), &r.overall));
    let mut few = false;
    for (name, row) in rows {
        for (pred, m) in [
            ("neighbours", &row.knn),
            ("global mean", &row.global_mean),
            ("label mean", &row.label_mean),
        ] {
            // A correlation is marked where it is a number from too few.
            let mut corr = |v: f64| {
                if m.n < FEW_SCORED && v.is_finite() {
                    few = true;
                    format!("{}*", f(v))
                } else {
                    f(v)
                }
            };
            let _ = writeln!(
                s,
                "{:<14} {:<12} {:>6} {:>8} {:>8} {:>9} {:>9}",
                name,
                pred,
                m.n,
                f(m.mae),
                f(m.rmse),
                corr(m.pearson),
                corr(m.spearman)
            );
        }
    }
    if few {
        let _ = writeln!(
            s,
            "* over fewer than {FEW_SCORED} items: a correlation over so few means little (at \
             10 items a Spearman rho under 0.65 is within chance); grade more items"
        );
    }
    s.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use likeness_index::score::{LabelScores, ScoreMetrics, ScoreReport, ScoreRow};

    fn row(n: usize) -> ScoreRow {
        let truth: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let m = ScoreMetrics::of(&truth, &truth);
        ScoreRow {
            knn: m,
            global_mean: m,
            label_mean: m,
        }
    }

    /// A label of 3 graded items showed `Spearman 1.0000` as if it meant
    /// as much as the whole set's: its correlations are now marked, and a
    /// line says why; rows of 10 items or more are not.
    #[test]
    fn correlations_over_few_items_are_marked() {
        let report = |label_items: usize| ScoreReport {
            k: 5,
            weighting: "1/distance".into(),
            scored: 40,
            overall: row(40),
            per_label: vec![LabelScores {
                label: 0,
                class: Some("cheek".into()),
                scores: row(label_items),
            }],
            pairs: Vec::new(),
        };
        let text = render_score(&report(3));
        let cheek = text
            .lines()
            .find(|l| l.starts_with("cheek") && l.contains("neighbours"))
            .unwrap();
        assert!(cheek.ends_with("1.0000*"), "{text}");
        let all = text.lines().find(|l| l.starts_with("all")).unwrap();
        assert!(!all.contains('*'), "{text}");
        assert!(text.contains("* over fewer than 10 items"), "{text}");
        let enough = render_score(&report(FEW_SCORED));
        assert!(!enough.contains('*'), "{enough}");
    }
}
