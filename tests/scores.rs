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
    // A second photograph of subject a: its sides pair with each other,
    // not with the first photograph's.
    let img2 = dir.path().join("sym2.png");
    sym.save(&img2).unwrap();
    let csv = dir.path().join("pairs.csv");
    std::fs::write(
        &csv,
        format!(
            "path,label,x,y,w,h,subject,side\n\
             {p},cheek,16,70,36,30,a,left\n\
             {p},cheek,98,70,36,30,a,right\n\
             {p},under_eye,24,50,36,18,a,left\n\
             {p},under_eye,90,50,36,18,a,right\n\
             {q},cheek,16,70,36,30,a,left\n\
             {q},cheek,98,70,36,30,a,right\n\
             {p},cheek,10,60,36,30,b,left\n",
            p = img.display(),
            q = img2.display()
        ),
    )
    .unwrap();
    let out = dir.path().join("asym");
    let asymmetry = || {
        likeness(&[
            "asymmetry",
            "--model",
            s(&model),
            "--data",
            s(&csv),
            "--out",
            s(&out),
        ])
    };
    let o = asymmetry();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("3 left/right pairs"), "{text}");
    assert!(text.contains("1 one-sided region"), "{text}");
    // Each most asymmetric pair names its photograph (subject a has two)
    // and the number is said to be a distance.
    assert!(
        text.contains("the cosine distance of the left crop"),
        "{text}"
    );
    let named = text
        .lines()
        .filter(|l| l.contains("most asymmetric:"))
        .filter(|l| l.ends_with(s(&img)) || l.ends_with(s(&img2)))
        .count();
    assert_eq!(named, 3, "{text}");
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
    // One cheek pair, the right box at `right_x`: asymmetry's error.
    let fails = |right_x: u32| {
        std::fs::write(
            &csv,
            format!(
                "path,label,x,y,w,h,subject,side\n{p},cheek,16,70,36,30,a,left\n{p},cheek,{right_x},70,36,30,a,right\n",
                p = img.display()
            ),
        )
        .unwrap();
        let o = asymmetry();
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    // A box outside the image is an error naming it.
    let err = fails(140);
    assert!(err.contains("140"), "{err}");

    // A card that records a score read-out the weights lack: an error
    // that names it, not a panic.
    let card_path = model.join("model.json");
    let mut card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&card_path).unwrap()).unwrap();
    card["score_weight"] = 1.0.into();
    card["score_norm"] = serde_json::json!({"mean": 0.5, "std": 0.25});
    std::fs::write(&card_path, serde_json::to_vec(&card).unwrap()).unwrap();
    let err = fails(98);
    assert!(err.contains("score_head.weight"), "{err}");
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
    // A model without a read-out predicts nothing.
    assert!(v["auc_unequal_readout"].is_null(), "{v}");

    // Trained from the grades, the model's score read-out predicts each
    // side; on symmetric faces the read-outs of equal sides are equal, so
    // every unequal pair ranks above every equal one, without an index.
    let graded = dir.path().join("graded");
    common::train_small(
        &set.join("regions.csv"),
        &graded,
        1,
        20,
        &["--score-bins", "3"],
    );
    let card_path = graded.join("model.json");
    let mut card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&card_path).unwrap()).unwrap();
    assert!(card["score_norm"]["std"].as_f64().unwrap() > 0.0, "{card}");
    let out = dir.path().join("asym-readout");
    let regions = set.join("regions.csv");
    let run_on = |data: &Path, out: &Path| {
        let o = likeness(&[
            "asymmetry",
            "--model",
            s(&graded),
            "--data",
            s(data),
            "--out",
            s(out),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
        (o, summary)
    };
    let run = |out: &Path| run_on(&regions, out);
    let (o, v) = run(&out);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("ROC AUC of |read-out left - right|"),
        "{text}"
    );
    let auc = v["auc_unequal_readout"].as_f64().unwrap();
    assert!(auc > 0.99, "read-out ROC AUC {auc}: {v}");
    let rows = std::fs::read_to_string(out.join("asymmetry.csv")).unwrap();
    let header: Vec<&str> = rows.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "readout_left").unwrap();
    for line in rows.lines().skip(1) {
        let v: f32 = line.split(',').nth(col).unwrap().parse().unwrap();
        assert!(v.is_finite(), "{line}");
    }
    // The card records what the read-out learnt from: on those regions
    // nothing is unfamiliar, and a linear read-out stays near their scores.
    assert_eq!(
        card["score_domain"]["labels"],
        serde_json::json!(["cheek", "under_eye"])
    );
    let (lo, hi) = (
        card["score_domain"]["min"].as_f64().unwrap(),
        card["score_domain"]["max"].as_f64().unwrap(),
    );
    assert!(
        (0.0..0.2).contains(&lo) && (0.8..=1.0).contains(&hi),
        "{card}"
    );
    assert_eq!(
        v["readout_unfamiliar"]["labels"],
        serde_json::json!([]),
        "{v}"
    );
    assert_eq!(v["readout_unfamiliar"]["out_of_range"], 0, "{v}");
    // Its only warning: these are the very pairs it trained on (the AUC
    // above checks the mechanism, not how it grades new faces).
    let err = String::from_utf8_lossy(&o.stderr);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
    assert!(
        warnings.len() == 1 && warnings[0].contains("what the model remembers"),
        "{err}"
    );

    // Asked about a label it never learnt (the under-eyes renamed `eye`),
    // it says those read-outs are not grades.
    let renamed = set.join("renamed.csv");
    let text = std::fs::read_to_string(&regions).unwrap();
    std::fs::write(&renamed, text.replace(",under_eye,", ",eye,")).unwrap();
    let (o, v) = run_on(&renamed, &dir.path().join("asym-eye"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("learnt from cheek, under_eye; eye is not among them"),
        "{err}"
    );
    assert_eq!(
        v["readout_unfamiliar"]["labels"],
        serde_json::json!(["eye"]),
        "{v}"
    );
    // Given photographs, it places only the regions the read-out learnt
    // from, so every read-out is a grade.
    let photos_out = dir.path().join("asym-photos");
    let (o, v) = run_on(&johns, &photos_out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("placing cheek, under_eye only"), "{err}");
    assert!(!err.contains("warning"), "{err}");
    let placed = std::fs::read_to_string(photos_out.join("regions.csv")).unwrap();
    let labels: std::collections::BTreeSet<&str> = placed
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(
        labels.into_iter().collect::<Vec<_>>(),
        ["cheek", "under_eye"],
        "{placed}"
    );
    assert_eq!(v["pairs"], 4, "{v}");

    // Read-outs far outside the training scores (here: a card that says
    // it learnt from scores 5 to 6) are counted and named.
    let mut moved = card.clone();
    moved["score_domain"]["min"] = 5.0.into();
    moved["score_domain"]["max"] = 6.0.into();
    std::fs::write(&card_path, serde_json::to_vec_pretty(&moved).unwrap()).unwrap();
    let (o, v) = run(&dir.path().join("asym-range"));
    let u = &v["readout_unfamiliar"];
    assert!(u["readouts"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(u["out_of_range"], u["readouts"], "{v}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("lie outside the training scores [5, 6]"),
        "{err}"
    );

    // A card written before the domain was recorded: no such report.
    card.as_object_mut().unwrap().remove("score_domain");
    std::fs::write(&card_path, serde_json::to_vec_pretty(&card).unwrap()).unwrap();
    let (_, v) = run(&dir.path().join("asym-nodomain"));
    assert!(v.get("readout_unfamiliar").is_none(), "{v}");
    assert!(v["auc_unequal_readout"].as_f64().is_some(), "{v}");

    // A model.json written before the read-out's standardisation was
    // recorded still loads: asymmetry says why it has no read-out.
    card.as_object_mut().unwrap().remove("score_norm");
    std::fs::write(&card_path, serde_json::to_vec_pretty(&card).unwrap()).unwrap();
    let (o, v) = run(&dir.path().join("asym-old"));
    assert!(v["auc_unequal_readout"].is_null(), "{v}");
    assert!(v["auc_unequal"].as_f64().is_some(), "{v}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("predates"), "{err}");
}

/// Scores, subjects and sides flow from a manifest through `embed`
/// (`items.csv`, `scores.npy` with NaN where a row has none) and `index`
/// (`meta.bin` version 2), and `query` shows them.
#[test]
fn scores_flow_through_embed_index_and_query() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path());
    let a = common::johns_image("John_Salley");
    let b = common::johns_image("John_Simm");
    let csv = dir.path().join("graded.csv");
    std::fs::write(
        &csv,
        format!(
            "path,label,x,y,w,h,score,subject,side\n\
             {a},cheek,16,70,36,30,0.1,a,left\n\
             {a},cheek,98,70,36,30,0.6,a,right\n\
             {b},cheek,16,70,36,30,,b,left\n\
             {b},under_eye,24,50,36,18,0.9,,\n",
            a = a.display(),
            b = b.display()
        ),
    )
    .unwrap();
    let emb = dir.path().join("emb");
    ok(&[
        "embed",
        "--model",
        s(&model),
        "--data",
        s(&csv),
        "--out",
        s(&emb),
    ]);
    let items = std::fs::read_to_string(emb.join("items.csv")).unwrap();
    assert!(
        items.starts_with("id,label,class,path,row,x,y,w,h,score,subject,side"),
        "{items}"
    );
    assert!(
        items.lines().nth(2).unwrap().ends_with(",0.6,a,right"),
        "{items}"
    );
    // scores.npy: a 1-D little-endian float32 array (.npy version 1 header).
    let bytes = std::fs::read(emb.join("scores.npy")).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let hl = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8_lossy(&bytes[10..10 + hl]);
    assert!(
        header.contains("'<f4'") && header.contains("(4,)"),
        "{header}"
    );
    let all: Vec<f32> = bytes[10 + hl..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(all.len(), 4);
    assert_eq!((all[0], all[1], all[3]), (0.1, 0.6, 0.9));
    assert!(all[2].is_nan());
    // A model without a score read-out predicts no grades.
    assert!(!emb.join("predicted_scores.npy").exists());

    let idx = dir.path().join("index");
    ok(&[
        "index",
        "--model",
        s(&model),
        "--data",
        s(&csv),
        "--out",
        s(&idx),
    ]);
    let index = likeness_index::Index::open(&idx).unwrap();
    assert_eq!(index.manifest().format_version, 2);
    let got = index.scores().unwrap();
    assert_eq!((got[0], got[1], got[3]), (0.1, 0.6, 0.9));
    assert!(got[2].is_nan());
    let p = index.pairings().unwrap();
    assert_eq!(p[1].subject.as_deref(), Some("a"));
    assert_eq!(p[1].side, Some(likeness_index::Side::Right));
    assert_eq!(p[3], ItemPairing::default());
    // A query by item shows its hits' scores and the predicted one.
    let line = ok(&[
        "query",
        "--index",
        s(&idx),
        "--id",
        "0",
        "-k",
        "3",
        "--json",
    ]);
    let q: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    let p = q["predicted_score"].as_f64().unwrap();
    assert!((0.6..=0.9).contains(&p), "{q}");
    // ... and the item's own score, beside it.
    assert!(
        (q["query_score"].as_f64().unwrap() - 0.1).abs() < 1e-6,
        "{q}"
    );
    // ... and each hit's subject and side, from the manifest's columns.
    let one = q["hits"].as_array().unwrap().iter().find(|h| h["id"] == 1);
    assert_eq!(
        one.map(|h| (h["side"].clone(), h["subject"].clone())),
        Some((serde_json::json!("right"), serde_json::json!("a"))),
        "{q}"
    );
    let table = ok(&["query", "--index", s(&idx), "--id", "0", "-k", "3"]);
    assert!(
        table.starts_with("query: item 0 (score 0.1000, side left, subject a)\npredicted score: "),
        "{table}"
    );
    // Without a score read-out, an image query has no grade of its own.
    let by_image = ok(&[
        "query",
        "--index",
        s(&idx),
        "--image",
        s(&a),
        "-k",
        "3",
        "--json",
    ]);
    let q: serde_json::Value = serde_json::from_str(by_image.lines().next().unwrap()).unwrap();
    assert!(q.get("readout_score").is_none(), "{q}");
    assert!(q["hits"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["score"].as_f64().is_some()));
}

/// Training from grades alone: `train --score-bins` (with its score
/// read-out, on by default) on images whose grade is their brightness gives
/// an index whose predicted scores follow the grades of images it has not
/// seen; the read-out's weight is recorded, and asking for it without
/// `--score-bins`, or with a negative weight, is an error.
#[test]
fn training_from_grades_predicts_grades_of_new_images() {
    use rand::SeedableRng;
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let train = common::brightness_grades(dir.path(), "train", 120, &mut rng);
    let test = common::brightness_grades(dir.path(), "test", 60, &mut rng);
    let model = dir.path().join("model");
    // Named relatively (as a user types `--data grades.csv`): the card
    // must still say where the rows were once `eval` runs elsewhere.
    common::train_small_in(
        dir.path(),
        Path::new("train.csv"),
        &model,
        1,
        60,
        &["--score-bins", "3"],
    );
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("model.json")).unwrap()).unwrap();
    assert_eq!(card["score_weight"], 1.0);
    assert!(card["score_bins"].as_array().unwrap().len() == 2);
    let index = dir.path().join("index");
    ok(&[
        "index",
        "--model",
        s(&model),
        "--data",
        s(&test),
        "--out",
        s(&index),
    ]);
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "eval",
        "--index",
        s(&index),
        "--score",
        "--json",
        "--out",
        s(&dir.path().join("eval")),
    ]))
    .unwrap();
    let rho = v["score_spearman"].as_f64().unwrap();
    assert!(
        rho > 0.8,
        "Spearman rho {rho} of predicted against true grades"
    );
    // `eval --score` of an index of the rows the model trained on says its
    // figures measure memory; of rows it did not train on, it does not.
    let eval_of = |data: &Path, name: &str| {
        let ix = dir.path().join(name);
        ok(&[
            "index",
            "--model",
            s(&model),
            "--data",
            s(data),
            "--out",
            s(&ix),
        ]);
        let o = likeness(&["eval", "--index", s(&ix), "--score"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let said = eval_of(&test, "index-test");
    assert!(!said.contains("trained on"), "{said}");
    let said = eval_of(&train, "index-train");
    assert!(
        said.contains("warning: 120 of the 120 scored items") && said.contains("trained on"),
        "{said}"
    );
    // `embed` writes each new image's grade as the read-out predicts it,
    // in the rows' order, beside the true scores of the manifest.
    // Named relatively, from the test's folder: embed.json must still say
    // where the model and the rows are (it once said `"model_dir": "M"`).
    let emb = dir.path().join("emb");
    let said = common::likeness_in(
        dir.path(),
        &[
            "embed", "--model", "model", "--data", "test.csv", "--out", "emb",
        ],
    );
    assert!(said.contains("predicted_scores.npy"), "{said}");
    let predicted = likeness_index::npy::read_floats(emb.join("predicted_scores.npy")).unwrap();
    let truth = likeness_index::npy::read_floats(emb.join("scores.npy")).unwrap();
    assert_eq!(predicted.len(), 60);
    let f64s = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
    let (rp, rt) = (
        likeness_index::score::ranks(&f64s(&predicted)),
        likeness_index::score::ranks(&f64s(&truth)),
    );
    let rho = likeness_index::score::pearson(&rp, &rt);
    assert!(rho > 0.8, "Spearman rho {rho} of the read-out's grades");
    // A query by image grades the query image the same way.
    let first = dir.path().join("img").join("test0.png");
    let by_image = |json: bool| {
        let mut a = vec![
            "query",
            "--index",
            s(&index),
            "--image",
            s(&first),
            "-k",
            "3",
        ];
        a.extend(json.then_some("--json"));
        ok(&a)
    };
    let answer = by_image(true);
    let q: serde_json::Value = serde_json::from_str(answer.lines().next().unwrap()).unwrap();
    let grade = q["readout_score"].as_f64().unwrap();
    assert!(
        (grade - f64::from(predicted[0])).abs() < 1e-4,
        "query's grade {grade}, embed's {}",
        predicted[0]
    );
    let table = by_image(false);
    assert!(table.contains("grade: "), "{table}");
    // So does the server's `/search/image`, batched (the default) or not.
    let bytes = std::fs::read(&first).unwrap();
    for max_batch in ["8", "1"] {
        let server =
            common::server::Server::start(&["--index", s(&index), "--max-batch", max_batch], &[]);
        let a = common::server::request(
            server.addr,
            "POST",
            "/search/image?k=3",
            &["Content-Type: image/png"],
            &bytes,
        );
        assert_eq!(a.status, 200, "{}", a.text());
        let g = a.json()["readout_score"].as_f64().unwrap();
        assert!(
            (g - f64::from(predicted[0])).abs() < 1e-4,
            "--max-batch {max_batch}: the server's grade {g}, embed's {}",
            predicted[0]
        );
        server.stop();
    }
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(emb.join("embed.json")).unwrap()).unwrap();
    assert_eq!(card["predicted_scores"], true, "{card}");
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap().display().to_string();
    assert_eq!(card["model_dir"], canon(&model), "{card}");
    assert_eq!(card["source"], canon(&test), "{card}");
    assert_eq!(card["readout_unfamiliar"]["labels"], serde_json::json!([]));
    // Regions of a label it never learnt from get numbers, not grades: said.
    let other = dir.path().join("other.csv");
    let text = std::fs::read_to_string(&test).unwrap();
    std::fs::write(&other, text.replace(",grade,", ",other,")).unwrap();
    let o = likeness(&[
        "embed",
        "--model",
        s(&model),
        "--data",
        s(&other),
        "--out",
        s(&dir.path().join("emb-other")),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("learnt from grade; other is not among them"),
        "{err}"
    );

    for (args, says) in [
        (vec!["--score-weight", "1"], "needs --score-bins"),
        (vec!["--score-bins", "3", "--score-weight=-1"], ">= 0"),
    ] {
        let mut a = vec!["train", "--data", s(&train), "--out"];
        let out = dir.path().join("bad");
        a.push(s(&out));
        a.extend(args);
        let o = likeness(&a);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{err}");
    }
}

/// Few annotations: a manifest where only some rows are graded (here one
/// label's) trains with `--score-bins` on those rows, says how many it left
/// out, records only their label as what the read-out grades, and `embed`
/// still writes every row with the others flagged; a manifest with no
/// score at all is refused with what to do.
#[test]
fn score_bins_train_on_the_graded_rows_and_leave_the_rest() {
    use rand::SeedableRng;
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let graded = common::brightness_grades(dir.path(), "graded", 60, &mut rng);
    let other = common::brightness_grades(dir.path(), "other", 40, &mut rng);
    // One manifest: the graded rows as they are, the others relabelled and
    // with their score cells emptied.
    let mut text = std::fs::read_to_string(&graded).unwrap();
    for line in std::fs::read_to_string(&other).unwrap().lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        text.push_str(&format!("{},patch,,{}\n", cells[0], cells[3]));
    }
    let mixed = dir.path().join("mixed.csv");
    std::fs::write(&mixed, text).unwrap();
    let model = dir.path().join("model");
    // The settings it derived, with their reasons.
    let said = common::train_small(&mixed, &model, 1, 20, &["--score-bins", "3"]);
    assert!(said.contains("graded rows: 60 of 100"), "{said}");
    assert!(!said.contains("not learnt"), "{said}");
    assert!(said.contains("the 40 without one are left out"), "{said}");
    // Without --score-bins the grades are not learnt: said at once, not
    // first noticed when embed writes no predicted_scores.npy.
    let said = common::train_small(&mixed, &dir.path().join("labels-only"), 1, 2, &[]);
    assert!(
        said.contains(
            "scores: not learnt; 60 of 100 rows have a score, but without --score-bins the \
             classes are the labels"
        ),
        "{said}"
    );
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("model.json")).unwrap()).unwrap();
    assert_eq!(
        card["score_domain"]["labels"],
        serde_json::json!(["grade"]),
        "{card}"
    );
    let emb = dir.path().join("emb");
    let o = likeness(&[
        "embed",
        "--model",
        s(&model),
        "--data",
        s(&mixed),
        "--out",
        s(&emb),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let predicted = likeness_index::npy::read_floats(emb.join("predicted_scores.npy")).unwrap();
    assert_eq!(predicted.len(), 100);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("learnt from grade; patch is not among them"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // No grade anywhere: refused, saying what to add.
    let none = dir.path().join("none.csv");
    let text = std::fs::read_to_string(&mixed).unwrap();
    let cleared: String = text
        .lines()
        .map(|l| {
            let mut c: Vec<&str> = l.split(',').collect();
            if c[2] != "score" {
                c[2] = "";
            }
            c.join(",") + "\n"
        })
        .collect();
    std::fs::write(&none, cleared).unwrap();
    let o = likeness(&[
        "train",
        "--data",
        s(&none),
        "--out",
        s(&dir.path().join("m2")),
        "--score-bins",
        "3",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("no row has a score") && err.contains("add a `score` column"),
        "{err}"
    );
}

/// An index of the cheeks of four johns (the swell set's boxes), made by
/// a small model whose read-out learnt their grades (0 to 1, one side of
/// a face against the other): a read-out of facial regions only.
fn cheek_index(dir: &Path) -> std::path::PathBuf {
    let mut csv = String::from("path,label,x,y,w,h,score,subject,side\n");
    for (k, person) in ["John_Salley", "John_Savage", "John_Simm", "John_Shimkus"]
        .iter()
        .enumerate()
    {
        let p = common::johns_image(person);
        let g = k as f32 / 4.0;
        csv.push_str(&format!(
            "{p},cheek,16,70,36,30,{g},{person},right\n{p},cheek,98,70,36,30,{h},{person},left\n",
            p = p.display(),
            h = 1.0 - g
        ));
    }
    let manifest = dir.join("cheeks.csv");
    std::fs::write(&manifest, csv).unwrap();
    let model = dir.join("model");
    common::train_small(&manifest, &model, 1, 4, &["--score-bins", "2"]);
    let index = dir.join("index");
    ok(&[
        "index",
        "--model",
        s(&model),
        "--data",
        s(&manifest),
        "--out",
        s(&index),
    ]);
    index
}

/// `query --image PHOTO` with no `--region`, from a model whose read-out
/// learnt cheeks: the photo's faces are found and their cheeks graded, each
/// with the `--region` that queries it, and the whole photo gets no grade
/// (it once printed `grade: 0.3896` for a whole johns photo). A crop with
/// no face in it is graded as it is.
#[test]
fn a_whole_photo_query_grades_its_faces_regions_not_the_photo() {
    let dir = tempfile::tempdir().unwrap();
    let index = cheek_index(dir.path());
    let model = dir.path().join("model");
    let photo = common::johns_image("John_Schneider");
    let query = |image: &Path, json: bool| {
        let mut a = vec![
            "query",
            "--index",
            s(&index),
            "--image",
            s(image),
            "-k",
            "2",
        ];
        a.extend(json.then_some("--json"));
        ok(&a)
    };
    let table = query(&photo, false);
    assert!(!table.contains("grade: "), "{table}");
    assert!(table.contains("faces: 1 found"), "{table}");
    assert!(!table.contains("predicted score"), "{table}");
    let cheeks: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("  face 1  cheek "))
        .collect();
    assert_eq!(cheeks.len(), 2, "{table}");
    // Each line's --region, queried, gives the grade the line shows.
    for line in cheeks {
        let grade = line
            .split("grade ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        let region = line.split("--region ").nth(1).unwrap().trim();
        let one = ok(&[
            "query",
            "--index",
            s(&index),
            "--image",
            s(&photo),
            "--region",
            region,
            "-k",
            "1",
        ]);
        assert!(one.contains(&format!("grade: {grade} ")), "{line}\n{one}");
    }
    let json: serde_json::Value =
        serde_json::from_str(query(&photo, true).lines().next().unwrap()).unwrap();
    assert!(json.get("readout_score").is_none(), "{json}");
    assert!(json.get("predicted_score").is_none(), "{json}");
    assert_eq!(json["faces"].as_array().unwrap().len(), 2, "{json}");
    // Grades outside what the read-out learnt from are said, as for one
    // crop: with the recorded range moved far off (the weights, and so the
    // index's model fingerprint, unchanged), both cheeks lie outside it.
    let said = likeness(&["query", "--index", s(&index), "--image", s(&photo)]);
    assert!(
        !String::from_utf8_lossy(&said.stderr).contains("warning"),
        "{}",
        String::from_utf8_lossy(&said.stderr)
    );
    let card_path = model.join("model.json");
    let text = std::fs::read_to_string(&card_path).unwrap();
    let mut card: serde_json::Value = serde_json::from_str(&text).unwrap();
    card["score_domain"]["min"] = serde_json::json!(100.0);
    card["score_domain"]["max"] = serde_json::json!(101.0);
    std::fs::write(&card_path, card.to_string()).unwrap();
    let said = likeness(&["query", "--index", s(&index), "--image", s(&photo)]);
    let err = String::from_utf8_lossy(&said.stderr);
    assert!(said.status.success(), "{err}");
    assert!(
        err.contains("warning: 2 of the 2 region grades below lie outside the scores the read-out learnt from [100, 101]"),
        "{err}"
    );
    std::fs::write(&card_path, text).unwrap();
    // A cheek's crop holds no face: graded whole, as before.
    let crop = dir.path().join("crop.png");
    image::open(&photo)
        .unwrap()
        .crop_imm(98, 70, 36, 30)
        .save(&crop)
        .unwrap();
    let table = query(&crop, false);
    assert!(
        table.contains("grade: ") && !table.contains("faces:"),
        "{table}"
    );
    // And it says so: a photo without a face found (dogs, a face too
    // small) was graded whole with no word of why.
    let said = likeness(&["query", "--index", s(&index), "--image", s(&crop)]);
    let err = String::from_utf8_lossy(&said.stderr);
    assert!(
        err.contains("note: no face found in") && err.contains("graded whole, as one crop"),
        "{err}"
    );
    let said = likeness(&["query", "--index", s(&index), "--image", s(&photo)]);
    assert!(!String::from_utf8_lossy(&said.stderr).contains("no face found"));
}

/// `POST /search/image` of a whole photo follows `query --image`, batched
/// (the default) or not: from a model whose read-out learnt cheeks, the
/// answer holds the photo's `faces` in `/faces`' shape, their cheeks graded
/// as `region=` of each box grades it and as the CLI lists them, and
/// neither `readout_score` nor `predicted_score` (it once graded the whole
/// photo). A `region=` query, and a crop holding no face, keep their
/// `readout_score`.
#[test]
fn the_server_grades_a_whole_photos_faces_regions_not_the_photo() {
    let dir = tempfile::tempdir().unwrap();
    let index = cheek_index(dir.path());
    let photo = common::johns_image("John_Schneider");
    let bytes = std::fs::read(&photo).unwrap();
    let crop = {
        let mut out = std::io::Cursor::new(Vec::new());
        image::open(&photo)
            .unwrap()
            .crop_imm(98, 70, 36, 30)
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    };
    let cli: serde_json::Value = serde_json::from_str(
        ok(&[
            "query",
            "--index",
            s(&index),
            "--image",
            s(&photo),
            "-k",
            "2",
            "--json",
        ])
        .lines()
        .next()
        .unwrap(),
    )
    .unwrap();
    let listed = cli["faces"].as_array().unwrap_or_else(|| panic!("{cli}"));
    for max_batch in ["8", "1"] {
        let server =
            common::server::Server::start(&["--index", s(&index), "--max-batch", max_batch], &[]);
        let post = |path: &str, body: &[u8]| {
            let a = common::server::request(
                server.addr,
                "POST",
                path,
                &["Content-Type: image/jpeg"],
                body,
            );
            assert_eq!(a.status, 200, "{path}: {}", a.text());
            a.json()
        };
        let whole = post("/search/image?k=2", &bytes);
        let said = format!("--max-batch {max_batch}: {whole}");
        assert!(whole.get("readout_score").is_none(), "{said}");
        assert!(whole.get("predicted_score").is_none(), "{said}");
        assert_eq!(whole["hits"].as_array().unwrap().len(), 2, "{said}");
        let faces = whole["faces"].as_array().expect(&said);
        assert_eq!(faces.len(), 1, "{said}");
        assert_eq!(faces[0]["box"].as_array().unwrap().len(), 4, "{said}");
        let regions = faces[0]["regions"].as_array().unwrap();
        let mut sides: Vec<&str> = regions
            .iter()
            .map(|r| r["side"].as_str().unwrap())
            .collect();
        sides.sort_unstable();
        assert_eq!(sides, ["left", "right"], "{said}");
        for r in regions {
            assert_eq!(r["label"], "cheek", "{said}");
            let grade = r["grade"].as_f64().expect(&said);
            let b: Vec<String> = r["region"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.to_string())
                .collect();
            assert_eq!(b.len(), 4, "{said}");
            // The box queried as a region: its grade, as the page's click.
            let one = post(&format!("/search/image?k=1&region={}", b.join(",")), &bytes);
            assert!(one.get("faces").is_none(), "{one}");
            // A region asked for is graded as it is: nothing to explain.
            assert!(one.get("note").is_none(), "{one}");
            assert!(one.get("predicted_score").is_some(), "{one}");
            let want = one["readout_score"]
                .as_f64()
                .unwrap_or_else(|| panic!("no readout_score: {one}"));
            assert!((grade - want).abs() < 1e-4, "{said}: region= gave {want}");
            // The CLI lists the same box with the same grade.
            let same = listed
                .iter()
                .find(|f| f["region"] == r["region"])
                .unwrap_or_else(|| panic!("query --image lists no {r}: {cli}"));
            assert_eq!(same["side"], r["side"], "{cli}");
            let theirs = same["grade"].as_f64().unwrap();
            assert!((grade - theirs).abs() < 1e-4, "{said}: the CLI's {theirs}");
        }
        // A cheek's crop holds no face: graded whole, as before.
        let cropped = post("/search/image?k=2", &crop);
        assert!(cropped.get("faces").is_none(), "{cropped}");
        assert!(cropped["readout_score"].as_f64().is_some(), "{cropped}");
        // And says so, as `query --image` does: no face found was graded
        // whole with no word of why.
        let note = cropped["note"]
            .as_str()
            .unwrap_or_else(|| panic!("{cropped}"));
        assert!(
            note.contains("no face found") && note.contains("graded whole, as one crop"),
            "{note}"
        );
        assert!(
            note.contains("(cheek)") && note.contains("region="),
            "{note}"
        );
        assert!(whole.get("note").is_none(), "{said}");
        server.stop();
    }
}

/// `POST /faces` flags the grades `query --image` warns of: each graded
/// region's `outside_learnt` (by the card's range, the same rule), and the
/// range once as `score_domain`, so that a client can mark them (they
/// were listed bare, up to 5.68 from a read-out that learnt 1 to 5). With
/// the recorded range moved far off (the weights unchanged), both cheeks
/// are flagged; `/search/image`'s faces carry the same flag.
#[test]
fn faces_flags_grades_outside_what_the_read_out_learnt() {
    let dir = tempfile::tempdir().unwrap();
    let index = cheek_index(dir.path());
    let card_path = dir.path().join("model").join("model.json");
    let text = std::fs::read_to_string(&card_path).unwrap();
    let bytes = std::fs::read(common::johns_image("John_Schneider")).unwrap();
    let server = common::server::Server::start(&["--index", s(&index)], &[]);
    let post = |path: &str| {
        let a = common::server::request(
            server.addr,
            "POST",
            path,
            &["Content-Type: image/jpeg"],
            &bytes,
        );
        assert_eq!(a.status, 200, "{path}: {}", a.text());
        a.json()
    };
    // The cheeks' flags of an answer, with `/faces`' other regions
    // (ungraded: `grade` null) carrying none.
    let flags = |answer: &serde_json::Value| -> Vec<bool> {
        let regions = answer["faces"][0]["regions"].as_array().unwrap();
        for r in regions.iter().filter(|r| r["grade"].is_null()) {
            assert!(r.get("outside_learnt").is_none(), "{r}");
        }
        regions
            .iter()
            .filter(|r| r["label"] == "cheek")
            .map(|r| {
                r["outside_learnt"]
                    .as_bool()
                    .unwrap_or_else(|| panic!("no outside_learnt: {r}"))
            })
            .collect()
    };
    let faces = post("/faces");
    assert_eq!(
        faces["score_domain"]["labels"],
        serde_json::json!(["cheek"]),
        "{faces}"
    );
    assert_eq!(faces["score_domain"]["min"], 0.0, "{faces}");
    assert_eq!(faces["score_domain"]["max"], 1.0, "{faces}");
    assert!((faces["score_domain"]["slack"].as_f64().unwrap() - 0.1).abs() < 1e-6);
    assert_eq!(flags(&faces), [false, false], "{faces}");
    let mut card: serde_json::Value = serde_json::from_str(&text).unwrap();
    card["score_domain"]["min"] = serde_json::json!(100.0);
    card["score_domain"]["max"] = serde_json::json!(101.0);
    std::fs::write(&card_path, card.to_string()).unwrap();
    let faces = post("/faces");
    assert_eq!(faces["score_domain"]["min"], 100.0, "{faces}");
    assert_eq!(flags(&faces), [true, true], "{faces}");
    let whole = post("/search/image?k=1");
    assert_eq!(flags(&whole), [true, true], "{whole}");
    server.stop();
    std::fs::write(&card_path, text).unwrap();
}

/// `asymmetry` on the graded rows its model trained on says that its ROC
/// AUCs measure memory, as `eval --score` says of such an index (a user
/// who graded 48 regions, trained and ran `asymmetry` on the same manifest
/// was shown a read-out ROC AUC of 1.0000 and no warning); on graded
/// photographs the model did not train on, it says nothing of the kind.
#[test]
fn asymmetry_of_the_graded_rows_a_model_trained_on_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let cheeks = |people: &[&str], name: &str| {
        let mut csv = String::from("path,label,x,y,w,h,score,subject,side\n");
        for (k, person) in people.iter().enumerate() {
            let p = common::johns_image(person);
            let g = k as f32 / 4.0;
            csv.push_str(&format!(
                "{p},cheek,16,70,36,30,{g},{person},right\n{p},cheek,98,70,36,30,{h},{person},left\n",
                p = p.display(),
                h = if k % 2 == 0 { g } else { 1.0 - g }
            ));
        }
        let m = dir.path().join(name);
        std::fs::write(&m, csv).unwrap();
        m
    };
    let trained = cheeks(
        &["John_Salley", "John_Savage", "John_Simm", "John_Shimkus"],
        "trained.csv",
    );
    let model = dir.path().join("model");
    common::train_small(&trained, &model, 1, 4, &["--score-bins", "2"]);
    let asymmetry = |data: &Path, out: &str| {
        let out = dir.path().join(out);
        let o = likeness(&[
            "asymmetry",
            "--model",
            s(&model),
            "--data",
            s(data),
            "--out",
            s(&out),
        ]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
        (err, summary)
    };
    let (err, summary) = asymmetry(&trained, "asym-trained");
    assert!(
        err.contains("warning: 4 of the 4 pairs graded on both sides")
            && err.contains("what the model remembers"),
        "{err}"
    );
    assert_eq!(summary["pairs_trained_on"], 4, "{summary}");
    let new = cheeks(&["John_Schneider"], "new.csv");
    let (err, summary) = asymmetry(&new, "asym-new");
    assert!(!err.contains("remembers"), "{err}");
    assert_eq!(summary["pairs_trained_on"], 0, "{summary}");
}
