//! End to end on a small real subset (the johns face crops): train → embed /
//! index → query by image, region and id (with a montage) → eval, and the
//! bad inputs a user can give each step.
mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use common::{johns, likeness};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    o
}
fn fails(o: Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(2),
        "expected a usage/input error\nstdout:\n{}\nstderr:\n{}",
        stdout(&o),
        stderr(&o)
    );
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// The shared fixture: manifests over the johns crops (6 per person to train,
/// 5 to index), one small convnet trained on them and its index.
struct Fixture {
    root: PathBuf,
    train_csv: PathBuf,
    gallery_csv: PathBuf,
    model: PathBuf,
    index: PathBuf,
}

fn images(person: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(johns().join(person))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    v.sort();
    v
}

fn people() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(johns())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn train(data: &Path, out: &Path, seed: &str) {
    common::train_small(data, out, 2, 3, &["--seed", seed]);
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // Under target/tmp (a static is never dropped, so no TempDir).
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pipeline");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let mut train_csv = String::from("path,label\n");
        let mut gallery_csv = String::from("path,label\n");
        for p in people() {
            for (i, f) in images(&p).iter().enumerate() {
                let line = format!("{},{p}\n", f.display());
                if i < 6 {
                    train_csv.push_str(&line);
                } else {
                    gallery_csv.push_str(&line);
                }
            }
        }
        let (t, g) = (root.join("train.csv"), root.join("gallery.csv"));
        std::fs::write(&t, train_csv).unwrap();
        std::fs::write(&g, gallery_csv).unwrap();
        let model = root.join("model");
        train(&t, &model, "1");
        let index = root.join("index");
        ok(likeness(&[
            "index",
            "--model",
            s(&model),
            "--data",
            s(&g),
            "--out",
            s(&index),
        ]));
        Fixture {
            root,
            train_csv: t,
            gallery_csv: g,
            model,
            index,
        }
    })
}

#[test]
fn embed_writes_numpy_readable_vectors_row_i_for_item_i() {
    let f = fixture();
    let out = f.root.join("embedded");
    let o = ok(likeness(&[
        "embed",
        "--model",
        s(&f.model),
        "--data",
        s(&f.gallery_csv),
        "--out",
        s(&out),
        "--batch",
        "7",
    ]));
    assert!(stdout(&o).contains("embedded 25 images"), "{}", stdout(&o));
    let m = likeness_index::npy::read_matrix(out.join("vectors.npy")).unwrap();
    assert_eq!((m.rows, m.dim), (25, 16));
    let labels = likeness_index::npy::read_labels(out.join("labels.npy")).unwrap();
    assert_eq!(labels.len(), 25);
    // Row i is item i: the index built from the same gallery holds the same
    // vectors (normalised for cosine) in the same order.
    let index = likeness_index::Index::open(&f.index).unwrap();
    for i in [0, 12, 24] {
        let mut v = m.row(i).to_vec();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= n);
        let w = index.vector(i).unwrap();
        for (a, b) in v.iter().zip(w) {
            assert!((a - b).abs() < 1e-5, "row {i}: {a} vs {b}");
        }
    }
    assert_eq!(index.labels().unwrap(), &labels[..]);
    let items = std::fs::read_to_string(out.join("items.csv")).unwrap();
    assert!(items.starts_with("id,label,class,path"), "{items}");
    assert_eq!(items.lines().count(), 26);
    // An existing output is refused without --force.
    let err = fails(likeness(&[
        "embed",
        "--model",
        s(&f.model),
        "--data",
        s(&f.gallery_csv),
        "--out",
        s(&out),
    ]));
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
}

#[test]
fn skip_bad_lists_unusable_images_and_without_it_the_first_stops_the_run() {
    let f = fixture();
    let bad = f.root.join("broken.jpg");
    std::fs::write(&bad, b"not a jpeg at all").unwrap();
    let csv = f.root.join("with-bad.csv");
    let mut text = std::fs::read_to_string(&f.gallery_csv).unwrap();
    text.push_str(&format!("{},John_Simm\n", bad.display()));
    std::fs::write(&csv, text).unwrap();
    let out = f.root.join("skipping");
    let err = fails(likeness(&[
        "embed",
        "--model",
        s(&f.model),
        "--data",
        s(&csv),
        "--out",
        s(&out),
    ]));
    assert!(
        err.contains("broken.jpg") && err.contains("--skip-bad"),
        "{err}"
    );
    assert!(!out.exists());
    let o = ok(likeness(&[
        "embed",
        "--model",
        s(&f.model),
        "--data",
        s(&csv),
        "--out",
        s(&out),
        "--skip-bad",
    ]));
    assert!(stderr(&o).contains("skipped 1"), "{}", stderr(&o));
    let skipped = std::fs::read_to_string(out.join("skipped.csv")).unwrap();
    assert!(skipped.contains("broken.jpg"), "{skipped}");
    let m = likeness_index::npy::read_matrix(out.join("vectors.npy")).unwrap();
    assert_eq!(m.rows, 25);
}

#[test]
fn image_and_region_queries_print_hits_and_draw_a_montage() {
    let f = fixture();
    let gallery = std::fs::read_to_string(&f.gallery_csv).unwrap();
    let (path, person) = gallery.lines().nth(1).unwrap().split_once(',').unwrap();
    // The gallery image itself is its own nearest item.
    let o = ok(likeness(&[
        "query",
        "--index",
        s(&f.index),
        "--image",
        path,
        "-k",
        "3",
        "--json",
    ]));
    let first: serde_json::Value =
        serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    let hit = &first["hits"][0];
    assert_eq!(hit["rank"], 1);
    assert_eq!(hit["id"], 0);
    assert!(hit["distance"].as_f64().unwrap() < 1e-4, "{hit}");
    assert_eq!(hit["class"], person);
    assert_eq!(hit["path"], path);
    // A region query and a montage.
    let montage = f.root.join("montage.png");
    let o = ok(likeness(&[
        "query",
        "--index",
        s(&f.index),
        "--image",
        path,
        "--region",
        "20,30,80,60",
        "--label",
        person,
        "-k",
        "4",
        "--montage",
        s(&montage),
    ]));
    let text = stdout(&o);
    assert!(
        text.contains("[20,30,80,60]") && text.contains("rank"),
        "{text}"
    );
    let rows = text
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()) && l.contains(".jpg"));
    assert_eq!(rows.count(), 4, "{text}");
    let img = image::open(&montage).unwrap();
    assert!(
        img.width() > 4 * 96 && img.height() >= 96,
        "{:?}",
        (img.width(), img.height())
    );
    // By id: the item itself is left out of its results.
    let o = ok(likeness(&[
        "query",
        "--index",
        s(&f.index),
        "--id",
        "3",
        "-k",
        "24",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    let ids: Vec<i64> = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 24);
    assert!(!ids.contains(&3), "{ids:?}");
}

#[test]
fn eval_json_has_the_documented_keys_and_writes_its_files() {
    let f = fixture();
    let out = f.root.join("eval");
    let o = ok(likeness(&[
        "eval",
        "--index",
        s(&f.index),
        "--leave-one-out",
        "--json",
        "--out",
        s(&out),
    ]));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    for key in [
        "recall@1",
        "recall@2",
        "recall@4",
        "recall@8",
        "precision@1",
        "r_precision",
        "map@r",
        "queries",
    ] {
        assert!(v.get(key).is_some(), "{key} missing: {v}");
    }
    assert_eq!(v["queries"], 25);
    let r1 = v["recall@1"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&r1));
    assert_eq!(v["recall@1"], v["precision@1"]);
    assert_eq!(v["per_class"].as_array().unwrap().len(), 5);
    assert!(out.join("eval.json").is_file() && out.join("eval.png").is_file());
    // Query-vs-gallery: the training crops query the gallery by class name.
    let o = ok(likeness(&[
        "eval",
        "--index",
        s(&f.index),
        "--queries",
        s(&f.train_csv),
        "--ks",
        "1,5",
        "--json",
        "--out",
        s(&f.root.join("eval-q")),
    ]));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["queries"], 30);
    assert_eq!(v["protocol"], "query-vs-gallery");
    assert!(
        v.get("recall@5").is_some() && v.get("recall@2").is_none(),
        "{v}"
    );
}

#[test]
fn bad_query_inputs_get_specific_errors() {
    let f = fixture();
    let idx = s(&f.index);
    let junk = f.root.join("junk.png");
    std::fs::write(&junk, b"\x89PNG\r\n\x1a\n garbage").unwrap();
    let err = fails(likeness(&["query", "--index", idx, "--image", s(&junk)]));
    assert!(err.contains("junk.png"), "{err}");
    let face = images("John_Simm").remove(0);
    let err = fails(likeness(&[
        "query",
        "--index",
        idx,
        "--image",
        s(&face),
        "--region",
        "100,100,80,80",
    ]));
    assert!(err.contains("outside") || err.contains("region"), "{err}");
    let err = fails(likeness(&["query", "--index", idx, "--id", "25"]));
    assert!(err.contains("--id 25") && err.contains("0..25"), "{err}");
    let err = fails(likeness(&[
        "embed",
        "--model",
        idx,
        "--data",
        s(&f.gallery_csv),
        "--out",
        s(&f.root.join("never-vectors")),
    ]));
    assert!(err.contains("is an index, not a model"), "{err}");
    let err = fails(likeness(&["query", "--index", idx, "--id", "0", "-k", "0"]));
    // The engine's one check of a request (knn.rs) says the range.
    assert!(err.contains("k = 0") && err.contains("1..=1000"), "{err}");
    // Recall@K needs K other items (24 here, leave-one-out): more is refused
    // at once rather than searched for.
    let err = fails(likeness(&["eval", "--index", idx, "--ks", "1,25"]));
    assert!(err.contains("Recall@25") && err.contains("24"), "{err}");
    // Queries whose classes the index does not have: nothing to measure.
    let strangers = f.root.join("strangers.csv");
    let face = images("John_Simm").remove(0);
    std::fs::write(
        &strangers,
        format!("path,label\n{},nobody\n", face.display()),
    )
    .unwrap();
    let err = fails(likeness(&[
        "eval",
        "--index",
        idx,
        "--queries",
        s(&strangers),
    ]));
    assert!(
        err.contains("nobody") && err.contains("John_Simm") && err.contains("class names"),
        "{err}"
    );
    // An output folder where a file stands.
    let file = f.root.join("a-file");
    std::fs::write(&file, b"keep me").unwrap();
    let err = fails(likeness(&["eval", "--index", idx, "--out", s(&file)]));
    assert!(err.contains("is a file, where a folder is needed"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    // `--batch 0`, refused by every command that embeds (`add` took it as 1).
    for cmd in ["eval", "add", "embed", "asymmetry", "index"] {
        let err = fails(likeness(&[cmd, "--batch", "0"]));
        assert!(err.contains("`0` is not a batch"), "{cmd}: {err}");
    }
    // Another model than the one that built the index is refused.
    let other = f.root.join("other-model");
    train(&f.train_csv, &other, "2");
    let err = fails(likeness(&[
        "query",
        "--index",
        idx,
        "--image",
        s(&face),
        "--model",
        s(&other),
    ]));
    assert!(
        err.contains("model mismatch") && err.contains("fingerprint"),
        "{err}"
    );
}

#[test]
fn bad_galleries_get_specific_errors_and_a_failed_rebuild_keeps_the_old_index() {
    let f = fixture();
    let model = s(&f.model);
    let index = |data: &str, out: &str, extra: &[&str]| {
        let mut args = vec!["index", "--model", model, "--data", data, "--out", out];
        args.extend_from_slice(extra);
        likeness(&args)
    };
    // Empty gallery.
    let empty = f.root.join("empty.csv");
    std::fs::write(&empty, "path,label\n").unwrap();
    let out = f.root.join("never");
    let err = fails(index(s(&empty), s(&out), &[]));
    assert!(
        err.to_lowercase().contains("empty") || err.contains("no images"),
        "{err}"
    );
    assert!(!out.exists());
    // Bad graph parameters are refused before the gallery is embedded.
    let err = fails(index(s(&f.gallery_csv), s(&out), &["--m", "1"]));
    assert!(err.contains("m = 1") && !err.contains("embedded"), "{err}");
    assert!(!out.exists());
    // Grey images for an RGB model are converted, and the run says so.
    let grey_dir = f.root.join("grey");
    std::fs::create_dir_all(grey_dir.join("John_Simm")).unwrap();
    for (i, p) in images("John_Simm").iter().take(3).enumerate() {
        let g = image::open(p).unwrap().to_luma8();
        g.save(grey_dir.join("John_Simm").join(format!("{i}.png")))
            .unwrap();
    }
    let o = ok(likeness(&[
        "embed",
        "--model",
        model,
        "--data",
        s(&grey_dir),
        "--out",
        s(&f.root.join("grey-vectors")),
    ]));
    assert!(
        stderr(&o).contains("converted 3 images to RGB"),
        "{}",
        stderr(&o)
    );
    // --force over an existing index with a gallery that fails: the old
    // index is left untouched and still verifies.
    let copy = f.root.join("index-copy");
    ok(index(s(&f.gallery_csv), s(&copy), &[]));
    let before = std::fs::read(copy.join("manifest.json")).unwrap();
    let bad = f.root.join("bad-gallery.csv");
    let broken = f.root.join("broken2.jpg");
    std::fs::write(&broken, b"no image").unwrap();
    std::fs::write(&bad, format!("path,label\n{},x\n", broken.display())).unwrap();
    let err = fails(index(s(&bad), s(&copy), &["--force"]));
    assert!(err.contains("broken2.jpg"), "{err}");
    assert_eq!(std::fs::read(copy.join("manifest.json")).unwrap(), before);
    ok(likeness(&["verify", "--index", s(&copy)]));
    // Without --force an existing index is refused.
    let err = fails(index(s(&f.gallery_csv), s(&copy), &[]));
    assert!(err.contains("already exists"), "{err}");
}

/// A `model.json` edited or damaged by hand: an error that names the field,
/// never a panic or an abort on a huge allocation.
#[test]
fn a_damaged_model_card_is_refused_with_the_field_named() {
    let f = fixture();
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.model.join("model.json")).unwrap()).unwrap();
    let cases: [(&str, serde_json::Value, &str); 3] = [
        ("channels", serde_json::json!(1), "1 channels but 3 means"),
        (
            "std",
            serde_json::json!([0.5, 0.0, 0.5]),
            "standard deviation of 0",
        ),
        ("input_size", serde_json::json!(100000), "over the 1024 px"),
    ];
    // A copy of the fixture's model, and `embed` with it.
    let copy = |name: &str| {
        let dir = f.root.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(&f.model).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
        dir
    };
    let embed = |dir: &Path| {
        let out = f.root.join(format!(
            "{}-out",
            dir.file_name().unwrap().to_string_lossy()
        ));
        fails(likeness(&[
            "embed",
            "--model",
            s(dir),
            "--data",
            s(&f.gallery_csv),
            "--out",
            s(&out),
        ]))
    };
    for (field, value, says) in cases {
        let dir = copy(&format!("damaged-{field}"));
        let mut c = card.clone();
        c["spec"][field] = value;
        std::fs::write(dir.join("model.json"), c.to_string()).unwrap();
        let err = embed(&dir);
        assert!(err.contains(says), "{field}: {err}");
    }
    // Damaged weights: NaN in the last tensor of the file.
    let dir = copy("damaged-weights");
    let w = dir.join("weights.safetensors");
    let mut bytes = std::fs::read(&w).unwrap();
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&w, &bytes).unwrap();
    let err = embed(&dir);
    assert!(err.contains("weights.safetensors: checksum"), "{err}");
    // The same weights with a card that vouches for them (a training that
    // diverged, a card rewritten by hand): the NaN vectors are refused.
    let mut c = card.clone();
    c["weights_crc32"] = format!("{:08x}", crc32fast::hash(&bytes)).into();
    std::fs::write(dir.join("model.json"), c.to_string()).unwrap();
    let err = embed(&dir);
    assert!(err.contains("weights or model.json are damaged"), "{err}");
}

/// `embed` of large photos held a whole batch of them decoded before
/// turning any into the network's input: forty 4000×3000 JPEGs at the
/// default `--batch 128` peaked at 1.9 GB, against 0.9 GB at --batch 8;
/// 128 of them would hold 4.6 GB of pixels. Each photo now becomes its
/// input on the thread that decoded it, so the peak no longer grows with
/// the batch. Measured here as the process's high-water mark (VmHWM).
#[test]
fn embedding_large_photos_holds_no_batch_of_them_decoded() {
    let f = fixture();
    let dir = f.root.join("large-photos");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("someone")).unwrap();
    let first = dir.join("someone").join("p00.jpg");
    image::RgbImage::from_fn(4000, 3000, |x, y| {
        image::Rgb([(x / 16) as u8, (y / 12) as u8, ((x + y) / 28) as u8])
    })
    .save(&first)
    .unwrap();
    // 48 photos, 36 MB each decoded: 1.7 GB held at once before.
    for k in 1..48 {
        std::fs::hard_link(&first, dir.join("someone").join(format!("p{k:02}.jpg"))).unwrap();
    }
    let out = f.root.join("large-embedded");
    let (done, said, err, peak_kb) = run_measuring_peak(&[
        "--threads",
        "2",
        "embed",
        "--model",
        s(&f.model),
        "--data",
        s(&dir),
        "--out",
        s(&out),
        "--force",
        "--batch",
        "48",
    ]);
    assert!(done.success(), "{err}");
    assert!(said.contains("embedded 48 images"), "{said}{err}");
    // libtorch alone is ~0.5 GB; the photos decoded at once were 1.7 GB.
    assert!(
        peak_kb > 0 && peak_kb < 1_300_000,
        "peak RSS {peak_kb} kB embedding 48 photos of 4000×3000"
    );
}

/// Runs `likeness args` and returns its exit status, stdout, stderr and
/// peak resident memory in kB (the child's VmHWM, read as it runs).
fn run_measuring_peak(args: &[&str]) -> (std::process::ExitStatus, String, String, u64) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_likeness"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Drained as it runs: a child that fills a pipe would wait forever.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).unwrap();
        s
    });
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    let done = loop {
        if let Some(done) = child.try_wait().unwrap() {
            break done;
        }
        // VmHWM only grows, so any read after the peak shows it.
        if let Some(kb) = std::fs::read_to_string(&status).ok().and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        }) {
            peak_kb = peak_kb.max(kb);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    (done, out.join().unwrap(), err.join().unwrap(), peak_kb)
}

/// Training on large photos held a whole step of them decoded before
/// turning any into the network's input (the loader), and so did each
/// validation batch (`embed_items`, the trunk's cache) and the raw-pixel
/// baseline (512 at a time): a step of 32 whole 4000×3000 photos is
/// 1.15 GB of pixels. Each photo now becomes its input on the thread that
/// decoded it; and the sample `train` measures the data's shape and
/// normalisation on (up to 2,000 images) is read a few at a time, keeping
/// only sizes and pixel sums (all at once: 72 GB of 12-megapixel photos).
/// Two steps of 32 of 32 photos and a held-out set of 32, read as the
/// child's high-water mark (VmHWM).
#[test]
fn training_on_large_photos_holds_no_step_of_them_decoded() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("large-training");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    for (k, class) in ["ann", "bob"].iter().enumerate() {
        let photo = root.join(format!("{class}.jpg"));
        let k = k as u32 + 1;
        image::RgbImage::from_fn(4000, 3000, |x, y| {
            image::Rgb([(x * k / 16) as u8, (y / 12 * k) as u8, ((x + y) / 28) as u8])
        })
        .save(&photo)
        .unwrap();
        // 16 a class to train on, 16 held out: 36 MB each decoded. The
        // 32 to train on are also what `train` samples for the data's
        // shape and normalisation, which held them all decoded at once.
        for (set, n) in [("train", 16), ("val", 16)] {
            std::fs::create_dir_all(root.join(set).join(class)).unwrap();
            for i in 0..n {
                let to = root.join(set).join(class).join(format!("p{i:02}.jpg"));
                std::fs::hard_link(&photo, to).unwrap();
            }
        }
    }
    let out = root.join("model");
    let (done, _, err, peak_kb) = run_measuring_peak(&[
        "--threads",
        "2",
        "train",
        "--data",
        s(&root.join("train")),
        "--val-data",
        s(&root.join("val")),
        "--out",
        s(&out),
        "--arch",
        "convnet",
        "--input-size",
        "32",
        "--dim",
        "16",
        "--classes-per-tuple",
        "2",
        "--tuples",
        "8",
        "--max-steps",
        "2",
        "--eval-batch",
        "32",
    ]);
    assert!(done.success(), "{err}");
    assert!(out.join("model.json").exists(), "{err}");
    // libtorch alone is ~0.5 GB; a step's photos decoded at once were 1.15 GB.
    assert!(
        peak_kb > 0 && peak_kb < 1_100_000,
        "peak RSS {peak_kb} kB training on steps of 32 photos of 4000×3000\n{err}"
    );
}
