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

/// A small model trained on the johns crops (any model will do: the tests
/// below compare distances it gives, not its quality).
fn small_model(dir: &Path) -> std::path::PathBuf {
    let model = dir.join("model");
    common::train_small(&common::johns(), &model, 1, 4, &[]);
    model
}

#[test]
fn asymmetry_of_a_symmetric_face_is_zero_and_one_sided_subjects_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path());
    // An exactly mirror-symmetric 150 x 150 image: the left half of a crop
    // and its mirror image.
    let face = image::open(common::johns_image("John_Salley"))
        .unwrap()
        .to_rgb8();
    let sym = image::RgbImage::from_fn(150, 150, |x, y| *face.get_pixel(x.min(149 - x), y));
    let img = dir.path().join("sym.png");
    sym.save(&img).unwrap();
    let csv = dir.path().join("pairs.csv");
    std::fs::write(
        &csv,
        format!(
            "path,label,x,y,w,h,subject,side\n\
             {p},cheek,16,70,36,30,a,left\n\
             {p},cheek,98,70,36,30,a,right\n\
             {p},under_eye,24,50,36,18,a,left\n\
             {p},under_eye,90,50,36,18,a,right\n\
             {p},cheek,10,60,36,30,b,left\n",
            p = img.display()
        ),
    )
    .unwrap();
    let out = dir.path().join("asym");
    let text = ok(&[
        "asymmetry",
        "--model",
        s(&model),
        "--data",
        s(&csv),
        "--out",
        s(&out),
    ]);
    assert!(text.contains("2 left/right pairs"), "{text}");
    assert!(text.contains("1 one-sided region"), "{text}");
    let rows = std::fs::read_to_string(out.join("asymmetry.csv")).unwrap();
    for line in rows.lines().skip(1) {
        let d: f32 = line.split(',').nth(3).unwrap().parse().unwrap();
        assert!(
            d.abs() < 1e-3,
            "a mirrored symmetric crop is {d} from its left crop"
        );
    }
    assert!(out.join("asymmetry.png").is_file());
    assert_eq!(
        std::fs::read_to_string(out.join("unpaired.csv"))
            .unwrap()
            .lines()
            .count(),
        2
    );
    // A box outside the image is an error naming it.
    std::fs::write(
        &csv,
        format!(
            "path,label,x,y,w,h,subject,side\n{p},cheek,16,70,36,30,a,left\n{p},cheek,140,70,36,30,a,right\n",
            p = img.display()
        ),
    )
    .unwrap();
    let o = likeness(&[
        "asymmetry",
        "--model",
        s(&model),
        "--data",
        s(&csv),
        "--out",
        s(&out),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("140"), "{err}");
}

/// The swell set derived from mirror-symmetric faces (the left half of a
/// crop and its mirror image): equal swells keep a face symmetric, unequal
/// ones do not, so `asymmetry` must rank every unequal variant above every
/// equal one, whatever the model. (On the real crops, a face's own
/// asymmetry of pose and light is larger than the swells; see the README.)
#[test]
fn asymmetry_ranks_unequal_swells_above_equal_ones() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path());
    let johns = dir.path().join("johns");
    for person in ["John_Salley", "John_Simm"] {
        std::fs::create_dir_all(johns.join(person)).unwrap();
        let face = image::open(common::johns_image(person)).unwrap().to_rgb8();
        image::RgbImage::from_fn(150, 150, |x, y| *face.get_pixel(x.min(149 - x), y))
            .save(johns.join(person).join("sym.png"))
            .unwrap();
    }
    let set = dir.path().join("swell");
    ok(&[
        "synth-swell",
        "--johns",
        s(&johns),
        "--out",
        s(&set),
        "--variants",
        "12",
    ]);
    let out = dir.path().join("asym");
    ok(&[
        "asymmetry",
        "--model",
        s(&model),
        "--data",
        s(&set.join("regions.csv")),
        "--out",
        s(&out),
    ]);
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert!(v["unequal_pairs"].as_u64().unwrap() > 4 && v["equal_pairs"].as_u64().unwrap() > 4);
    let auc = v["auc_unequal"].as_f64().unwrap();
    assert!(auc > 0.99, "ROC AUC {auc}: {v}");
}
