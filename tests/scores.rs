//! Scores, subjects and sides (issue 14) through the binary: `eval --score`
//! on a hand-made index with known neighbours, scores through `embed` and
//! `index`, and `asymmetry`.
mod common;

use std::path::Path;

use common::likeness;
use likeness_index::{IndexBuilder, ItemPairing, Metric};

fn ok(args: &[&str]) -> String {
    let o = likeness(args);
    assert!(
        o.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Four points on a line (squared Euclidean distance), K = 2, items 0 and 1
/// one subject; the predictions, MAE and ρ worked out by hand.
#[test]
fn eval_score_on_a_hand_made_index_gives_hand_computed_mae_and_rho() {
    let dir = tempfile::tempdir().unwrap();
    let idx = dir.path().join("hand");
    let pair = |subject: &str| ItemPairing {
        subject: Some(subject.into()),
        side: None,
    };
    IndexBuilder::new()
        .metric(Metric::L2)
        .classes(vec!["a".into(), "b".into()])
        .scores(vec![0.0, 1.0, 2.0, 4.0])
        .pairings(vec![pair("p"), pair("p"), pair("q"), pair("r")])
        .build(
            &[0.0, 1.0, 3.0, 7.0],
            1,
            Some(&[0, 0, 1, 1]),
            None,
            &idx,
            None,
        )
        .unwrap();
    let out = dir.path().join("eval");
    let line = ok(&[
        "eval",
        "--index",
        s(&idx),
        "--score",
        "--score-k",
        "2",
        "--ks",
        "1",
        "--json",
        "--out",
        s(&out),
    ]);
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    // Predictions: item 0 (its subject-mate 1 left out) from 3 and 7:
    // (2/9 + 4/49)/(1/9 + 1/49) = 134/58; item 1 from 3 and 7:
    // (2/4 + 4/36)/(1/4 + 1/36) = 2.2; item 2 from 1 and 0: (1/4)/(1/4 + 1/9)
    // = 9/13; item 3 from 3 and 1: (2/16 + 1/36)/(1/16 + 1/36) = 22/13.
    let mae = (134.0 / 58.0 + 1.2 + 17.0 / 13.0 + 30.0 / 13.0) / 4.0;
    let got = v["score_mae"].as_f64().unwrap();
    assert!((got - mae).abs() < 1e-5, "{got} vs {mae}");
    // Ranks of the predictions (4, 3, 1, 2) against (1, 2, 3, 4): ρ = 1 - 6·18/60.
    let rho = v["score_spearman"].as_f64().unwrap();
    assert!((rho + 0.8).abs() < 1e-9, "{rho}");
    // Baselines: the global mean 1.75 is off by 1.75, 0.75, 0.25, 2.25.
    assert!((v["score"]["global_mean"]["mae"].as_f64().unwrap() - 1.25).abs() < 1e-6);
    // Label means 0.5 and 3: off by 0.5, 0.5, 1, 1.
    assert!((v["score"]["label_mean"]["mae"].as_f64().unwrap() - 0.75).abs() < 1e-6);
    let per = v["score"]["per_label"].as_array().unwrap();
    assert_eq!(per.len(), 2);
    assert_eq!(per[1]["class"], "b");
    assert!(out.join("score.png").is_file());
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("eval.json")).unwrap()).unwrap();
    assert_eq!(saved["score"]["k"], 2);

    // The table names both baselines.
    let table = ok(&[
        "eval",
        "--index",
        s(&idx),
        "--score",
        "--score-k",
        "2",
        "--ks",
        "1",
        "--out",
        s(&out),
    ]);
    assert!(
        table.contains("global mean") && table.contains("label mean"),
        "{table}"
    );

    // Without scores in the index: an error that says what to do.
    let plain = dir.path().join("plain");
    IndexBuilder::new()
        .metric(Metric::L2)
        .build(
            &[0.0, 1.0, 3.0, 7.0],
            1,
            Some(&[0, 0, 1, 1]),
            None,
            &plain,
            None,
        )
        .unwrap();
    let o = likeness(&["eval", "--index", s(&plain), "--score"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("`score` column"));
}
