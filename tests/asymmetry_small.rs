//! `asymmetry` on regions too small to judge: pairs whose smaller crop is
//! under `MIN_REGION_PX` on its shorter edge are flagged in asymmetry.csv
//! and summary.json, warned of with what to do, and kept out of the most
//! and least asymmetric lists (all listed, each marked, when none is
//! larger).
mod common;

use std::path::Path;

use common::likeness;
use likeness::commands::asymmetry::MIN_REGION_PX;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn pairs_too_small_to_judge_are_flagged_warned_of_and_left_out_of_the_lists() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    common::train_small(&common::johns(), &model, 1, 4, &[]);
    let face = image::open(common::johns_image("John_Salley")).unwrap();
    let big = dir.path().join("big.png");
    face.save(&big).unwrap();
    // The same face as a small face of a photograph would be.
    let small = dir.path().join("small.png");
    face.resize_exact(40, 40, image::imageops::FilterType::Triangle)
        .save(&small)
        .unwrap();
    let t = MIN_REGION_PX;
    assert!(t > 2 && t <= 18, "the boxes below fit a 40 px face");
    let under = t - 1;
    let csv = dir.path().join("pairs.csv");
    let write = |rows: &str| {
        std::fs::write(&csv, format!("path,label,x,y,w,h,subject,side\n{rows}")).unwrap()
    };
    write(&format!(
        "{b},cheek,16,70,36,30,big,left\n\
         {b},cheek,98,70,36,30,big,right\n\
         {p},cheek,2,15,{under},{h},tiny,left\n\
         {p},cheek,{rx},15,{w},{under},tiny,right\n\
         {p},under_eye,2,10,{t},{t},edge,left\n\
         {p},under_eye,{ex},10,{t},{t},edge,right\n",
        b = big.display(),
        p = small.display(),
        h = t + 3,
        w = t + 5,
        rx = 38 - (t + 5),
        ex = 38 - t,
    ));
    let out = dir.path().join("asym");
    let run = |out: &Path| {
        let o = likeness(&[
            "asymmetry",
            "--model",
            s(&model),
            "--data",
            s(&csv),
            "--out",
            s(out),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (text, err) = run(&out);

    // Each pair's smaller crop's shorter edge, and whether it is too small.
    let rows = std::fs::read_to_string(out.join("asymmetry.csv")).unwrap();
    let header: Vec<&str> = rows.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let mut seen: Vec<(String, String, String)> = rows
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[col("subject")].to_string(),
                f[col("min_side_px")].to_string(),
                f[col("too_small")].to_string(),
            )
        })
        .collect();
    seen.sort();
    let want = |s: &str, px: u32, small: bool| (s.to_string(), px.to_string(), small.to_string());
    assert_eq!(
        seen,
        vec![
            want("big", 30, false),
            want("edge", t, false),
            want("tiny", under, true)
        ],
        "{rows}"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(v["too_small_pairs"], 1, "{v}");
    assert_eq!(v["min_region_px"], t, "{v}");
    assert!(
        err.contains(&format!(
            "warning: 1 of 3 left/right pairs has a region under {t} px on its shorter edge \
             (the smallest {under} px)"
        )),
        "{err}"
    );
    assert!(err.contains("--min-face"), "{err}");
    assert!(
        text.contains(&format!(
            "1 pair under {t} px, too small to judge (too_small in asymmetry.csv): left out \
             of this list"
        )),
        "{text}"
    );
    let listed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("most asymmetric:"))
        .collect();
    assert_eq!(listed.len(), 2, "{text}");
    assert!(listed.iter().all(|l| !l.contains("tiny")), "{text}");
    assert!(out.join("asymmetry.png").is_file());

    // Only small pairs: they are listed all the same, each marked, and
    // asymmetry.png is drawn.
    write(&format!(
        "{p},cheek,2,15,{under},{under},tiny,left\n{p},cheek,20,15,{under},{under},tiny,right\n",
        p = small.display()
    ));
    let out = dir.path().join("asym-small");
    let (text, err) = run(&out);
    assert!(
        err.contains("warning: 1 of 1 left/right pair has a region under"),
        "{err}"
    );
    assert!(
        text.contains("every pair is under") && text.contains("listed all the same, each marked"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.contains("most asymmetric: tiny")
            && l.contains(&format!("(too small: {under} px)"))),
        "{text}"
    );
    assert!(out.join("asymmetry.png").is_file());

    // Regions large enough: no warning, no word of it.
    write(&format!(
        "{b},cheek,16,70,36,30,big,left\n{b},cheek,98,70,36,30,big,right\n",
        b = big.display()
    ));
    let (text, err) = run(&dir.path().join("asym-big"));
    assert!(
        !err.contains("too small") && !text.contains("too small"),
        "{err}{text}"
    );
}
