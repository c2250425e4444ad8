//! The data module on real datasets (fetched by `make data`) and on bad input.
mod common;

use std::io::Write;
use std::path::Path;

use likeness::data::{Dataset, DecodeLimits, Side, SourceKind};
use likeness::Error;

#[test]
fn fashion_mnist_has_60000_train_and_10000_test_images_with_labels_0_to_9() {
    let train = Dataset::open(common::fashion_train()).unwrap();
    let test = Dataset::open(common::fashion_test()).unwrap();
    assert_eq!(train.kind(), SourceKind::Idx);
    assert_eq!(train.len(), 60_000);
    assert_eq!(test.len(), 10_000);
    for ds in [&train, &test] {
        assert_eq!(ds.classes().len(), 10);
        let counts = ds.class_counts();
        // Fashion-MNIST is balanced: 6,000 / 1,000 of each label 0..9.
        assert!(counts.iter().all(|&c| c == ds.len() / 10), "{counts:?}");
        assert!(ds.items().iter().all(|i| i.label < 10));
    }
    assert_eq!(train.classes()[9], "Ankle boot");
    let s = test.load(0).unwrap();
    assert_eq!((s.image.width(), s.image.height()), (28, 28));
    assert_eq!(s.image.color(), image::ColorType::L8);
    // The first test image of Fashion-MNIST is an ankle boot (label 9).
    assert_eq!(s.label, 9);
}

#[test]
fn idx_reads_plain_files_like_gzipped_ones() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
        let gz =
            std::fs::read(likeness::cache::fashion_mnist_dir().join(format!("{name}.gz"))).unwrap();
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain).unwrap();
        std::fs::write(dir.path().join(name), plain).unwrap();
    }
    let plain = Dataset::open(dir.path().join("t10k-images-idx3-ubyte")).unwrap();
    let gz = Dataset::open(common::fashion_test()).unwrap();
    assert_eq!(plain.len(), gz.len());
    for i in [0, 1, 4321, 9999] {
        let (a, b) = (plain.load(i).unwrap(), gz.load(i).unwrap());
        assert_eq!(a.label, b.label);
        assert_eq!(a.image.as_bytes(), b.image.as_bytes());
    }
    // Outside a fashion-mnist folder, classes are the digits.
    assert_eq!(plain.classes()[3], "3");
}

#[test]
fn johns_has_5_identities_of_11_aligned_150px_crops() {
    let ds = Dataset::open(common::johns()).unwrap();
    assert_eq!(ds.kind(), SourceKind::Folder);
    assert_eq!(ds.classes().len(), 5);
    assert_eq!(ds.class_counts(), vec![11; 5]);
    assert_eq!(ds.classes()[0], "John_Salley");
    let all: Vec<usize> = (0..ds.len()).collect();
    let samples = ds.load_many(&all).unwrap();
    for s in &samples {
        assert_eq!((s.image.width(), s.image.height()), (150, 150));
        assert_eq!(s.image.color(), image::ColorType::Rgb8);
    }
}

#[test]
fn parallel_loading_keeps_the_requested_order() {
    let ds = Dataset::open(common::fashion_test()).unwrap();
    let order: Vec<usize> = (0..2000).rev().collect();
    let batch = ds.load_many(&order).unwrap();
    for (&i, s) in order.iter().zip(&batch) {
        let one = ds.load(i).unwrap();
        assert_eq!(s.label, one.label);
        assert_eq!(s.image.as_bytes(), one.image.as_bytes(), "item {i}");
    }
}

fn write(path: &Path, text: &str) {
    std::fs::File::create(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

#[test]
fn manifest_with_facial_regions_yields_cropped_items() {
    let dir = tempfile::tempdir().unwrap();
    let a = common::johns_image("John_Salley");
    let b = common::johns_image("John_Simm");
    let csv = dir.path().join("regions.csv");
    write(
        &csv,
        &format!(
            "path,label,x,y,w,h\n{a},left_eye,30,45,40,25\n{a},mouth,45,100,60,30\n{b},left_eye,30,45,40,25\n{b},John_Simm\n",
            a = a.display(),
            b = b.display()
        ),
    );
    let ds = Dataset::open(&csv).unwrap();
    assert_eq!(ds.kind(), SourceKind::Manifest);
    assert_eq!(ds.len(), 4);
    assert_eq!(ds.region_count(), 3);
    assert_eq!(ds.classes(), ["John_Simm", "left_eye", "mouth"]);
    let s = ds.load_many(&[0, 1, 2, 3]).unwrap();
    assert_eq!((s[0].image.width(), s[0].image.height()), (40, 25));
    assert_eq!((s[1].image.width(), s[1].image.height()), (60, 30));
    assert_eq!(s[3].image.width(), 150);
    assert_eq!(ds.classes()[s[0].label], "left_eye");
    assert_eq!(s[0].label, s[2].label);
    // The crop is the pixels of the box, not a resized whole image.
    let whole = image::open(&a).unwrap().to_rgb8();
    let crop = s[0].image.to_rgb8();
    assert_eq!(crop.get_pixel(0, 0), whole.get_pixel(30, 45));
    assert_eq!(crop.get_pixel(39, 24), whole.get_pixel(69, 69));
}

/// The regions `likeness regions` writes (ten a face) are cut from one
/// decode of their photo, not one each: `embed` of 240 regions of one
/// 3972×3090 group photo took 19–25 s and now 10–13 s. Each item still
/// gets its own crop or its own error, in order; whole images and the
/// regions of other photos are loaded alone.
#[test]
fn the_regions_of_one_photo_share_one_decode() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.jpg"), dir.path().join("b.png"));
    // Noise, so that decoding costs what a photo's does.
    let mut seed = 7u32;
    let photo = image::RgbImage::from_fn(2000, 1500, |_, _| {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        image::Rgb([(seed >> 24) as u8, (seed >> 16) as u8, (seed >> 8) as u8])
    });
    photo.save(&a).unwrap();
    image::RgbImage::from_pixel(40, 30, image::Rgb([9, 9, 9]))
        .save(&b)
        .unwrap();
    let csv = dir.path().join("regions.csv");
    let mut text = String::from("path,label,x,y,w,h\n");
    let (a, b) = (a.display(), b.display());
    text += &format!("{a},eye,10,20,30,40\n{b},eye,1,2,3,4\n{a},cheek,100,200,50,60\n");
    text += &format!("{b},whole\n{a},eye,1990,10,40,20\n{a},mouth,0,0,2000,1500\n");
    // A damaged photo: each of its regions gets the decode error.
    let bad = dir.path().join("bad.jpg");
    std::fs::write(&bad, b"not a photo").unwrap();
    let bad = bad.display();
    text += &format!("{bad},eye,1,1,2,2\n{bad},cheek,1,1,2,2\n");
    for k in 0..40 {
        text += &format!("{a},nose,{},{},64,64\n", 20 * k, 10 * k);
    }
    write(&csv, &text);
    let ds = Dataset::open(&csv).unwrap();
    let all: Vec<usize> = (0..ds.len()).collect();
    let groups = ds.photo_groups(&all);
    let mut of_a = vec![0, 2, 4, 5];
    of_a.extend(8..48);
    assert_eq!(groups, [of_a, vec![1], vec![3], vec![6, 7]]);
    let each = ds.load_each(&all);
    assert_eq!(each.len(), all.len());
    for (i, got) in each.iter().enumerate() {
        match (got, ds.load(i)) {
            (Ok(g), Ok(w)) => {
                assert_eq!((g.label, &g.path, g.region), (w.label, &w.path, w.region));
                assert_eq!(g.image.as_bytes(), w.image.as_bytes(), "item {i}");
            }
            (Err(g), Err(w)) => assert_eq!(g.to_string(), w.to_string(), "item {i}"),
            (g, w) => panic!("item {i}: {:?} against {:?}", g.is_ok(), w.is_ok()),
        }
    }
    assert!(each[4]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("outside"));
    assert!(each[7]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("bad.jpg"));
    // One decode for the 40 noses, not 40: far under the time of 40 loads.
    let noses: Vec<usize> = (8..48).collect();
    let t = std::time::Instant::now();
    let alone: Vec<_> = noses.iter().map(|&i| ds.load(i).unwrap()).collect();
    let one_by_one = t.elapsed();
    let t = std::time::Instant::now();
    let shared = ds.load_many(&noses).unwrap();
    let together = t.elapsed();
    assert_eq!(alone.len(), shared.len());
    assert!(
        together * 5 < one_by_one,
        "40 regions of one photo: {together:?} together against {one_by_one:?} one by one"
    );
}

#[test]
fn manifest_paths_are_relative_to_the_manifest_and_numeric_labels_sort_numerically() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("img")).unwrap();
    for (i, name) in ["a.png", "b.png", "c.png"].iter().enumerate() {
        image::GrayImage::from_pixel(8, 8, image::Luma([i as u8 * 50]))
            .save(dir.path().join("img").join(name))
            .unwrap();
    }
    let csv = dir.path().join("m.csv");
    write(
        &csv,
        "img/a.png,10\nimg/b.png,9\n# a comment\nimg/c.png,10\n",
    );
    let ds = Dataset::open(&csv).unwrap();
    assert_eq!(ds.classes(), ["9", "10"]);
    assert_eq!(ds.class_counts(), vec![1, 2]);
    assert_eq!(ds.load(1).unwrap().image.as_bytes()[0], 50);
}

// ---- bad input: each gives a specific error, never a panic ----

fn class_folder_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let class = dir.path().join("person");
    std::fs::create_dir(&class).unwrap();
    for (name, bytes) in files {
        std::fs::write(class.join(name), bytes).unwrap();
    }
    dir
}

#[test]
fn corrupt_image_is_a_decode_error_naming_the_file() {
    let dir = class_folder_with(&[("bad.jpg", b"this is not a jpeg at all")]);
    let ds = Dataset::open(dir.path()).unwrap();
    match ds.load(0) {
        Err(e @ Error::App(likeness_app::Error::Decode { .. })) => {
            assert!(e.to_string().contains("bad.jpg"), "{e}")
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    // A truncated real JPEG, too.
    let real = std::fs::read(common::johns_image("John_Savage")).unwrap();
    // (Cut inside the headers: a cut inside the scan data decodes, greyed out,
    // as in every lenient JPEG decoder.)
    let dir = class_folder_with(&[("cut.jpg", &real[..200])]);
    let ds = Dataset::open(dir.path()).unwrap();
    assert!(matches!(
        ds.load_many(&[0]),
        Err(Error::App(likeness_app::Error::Decode { .. }))
    ));
}

#[test]
fn missing_file_in_manifest_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("m.csv");
    let a = common::johns_image("John_Salley");
    write(
        &csv,
        &format!("path,label\n{},a\nnowhere.jpg,b\n", a.display()),
    );
    match Dataset::open(&csv) {
        Err(e @ Error::Manifest { line: 3, .. }) => {
            assert!(e.to_string().contains("nowhere.jpg"), "{e}");
            assert!(e.to_string().contains("m.csv:3"), "{e}");
        }
        other => panic!("expected a manifest error on line 3, got {other:?}"),
    }
    // A folder source given a path that does not exist.
    assert!(matches!(
        Dataset::open(dir.path().join("no-such-folder")),
        Err(Error::App(likeness_app::Error::NotFound { .. }))
    ));
}

/// A manifest's errors name the line the row is on, whatever ends its
/// lines: a CRLF file's rows were each named one line too early, and rows
/// after a blank or comment line too.
#[test]
fn manifest_errors_name_the_row_line_in_crlf_files_and_after_blank_lines() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("m.csv");
    let a = common::johns_image("John_Salley");
    let a = a.display();
    let cases = [
        (format!("path,label\r\n{a},a\r\nnowhere.jpg,b\r\n"), 3),
        (format!("{a},a\r\n{a},b\r\nnowhere.jpg,b\r\n"), 3),
        (
            format!("path,label\r\n{a},a\r\n\r\n# a note\r\nnowhere.jpg,b\r\n"),
            5,
        ),
        (format!("path,label\n\n{a},a\n#\n\nnowhere.jpg,b\n"), 6),
        // A quoted label over two lines: the next row is on line 4.
        (
            format!("path,label\r\n{a},\"a\r\nb\"\r\nnowhere.jpg,b\r\n"),
            4,
        ),
    ];
    for (text, line) in cases {
        write(&csv, &text);
        match Dataset::open(&csv) {
            Err(e @ Error::Manifest { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("m.csv:{line}:")) && msg.contains("nowhere.jpg"),
                    "{text:?}: {msg}"
                );
            }
            other => panic!("expected a manifest error for {text:?}, got {other:?}"),
        }
    }
    // The rows that read record their own lines too.
    write(&csv, &format!("path,label\r\n\r\n{a},a\r\n{a},b\r\n"));
    let ds = Dataset::open(&csv).unwrap();
    let lines: Vec<_> = ds.items().iter().map(|it| it.line).collect();
    assert_eq!(lines, [Some(3), Some(4)]);
}

#[test]
fn region_outside_the_image_is_refused_with_the_box_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("m.csv");
    let a = common::johns_image("John_Salley");
    write(&csv, &format!("{},eye,120,10,40,20\n", a.display()));
    let ds = Dataset::open(&csv).unwrap();
    match ds.load(0) {
        Err(
            e @ Error::App(likeness_app::Error::RegionOutside {
                width: 150,
                height: 150,
                x: 120,
                w: 40,
                ..
            }),
        ) => {
            assert!(e.to_string().contains("outside"), "{e}");
            // A hit's JSON `region` (corners) pasted as a box lands here:
            // the message says which form a box takes.
            assert!(
                e.to_string()
                    .contains("not the corners x0,y0,x1,y1 of a hit's JSON `region`"),
                "{e}"
            );
        }
        other => panic!("expected RegionOutside, got {other:?}"),
    }
}

#[test]
fn empty_class_folder_is_refused() {
    let dir = class_folder_with(&[("a.png", &[])]);
    std::fs::create_dir(dir.path().join("nobody")).unwrap();
    std::fs::write(dir.path().join("nobody").join("notes.txt"), "x").unwrap();
    match Dataset::open(dir.path()) {
        Err(Error::EmptyClass { class, .. }) => assert_eq!(class, "nobody"),
        other => panic!("expected EmptyClass, got {other:?}"),
    }
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Dataset::open(empty.path()),
        Err(Error::EmptyDataset { .. })
    ));
}

/// A phone's or a camera's folder, as it comes: `inspect` (and `embed`,
/// `train`, which open folders alike) once listed its JPEGs and passed
/// over in silence its HEICs, its year folders, the photos at its top and
/// a dead link. Each is now counted and named, and the images still open;
/// files that are no photo (notes, Thumbs.db, .DS_Store) say nothing.
#[test]
fn a_photo_folder_names_what_it_leaves_out() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let png = |p: &Path| {
        image::RgbImage::from_pixel(8, 8, image::Rgb([120, 60, 30]))
            .save(p)
            .unwrap()
    };
    for d in ["Ann", "Ann/2019", "Bo Ångström"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    png(&root.join("Ann/a 1.png"));
    png(&root.join("Ann/2019/summer.png"));
    png(&root.join("Bo Ångström/b.png"));
    png(&root.join("loose.png"));
    std::fs::write(root.join("Ann/IMG_0001.HEIC"), b"heic").unwrap();
    std::fs::write(root.join("scan.tif"), b"tiff").unwrap();
    // A manifest beside the class folders (as the swell set's train.csv).
    std::fs::write(root.join("regions.csv"), b"path,label\nAnn/a 1.png,eye\n").unwrap();
    for junk in [
        "Ann/notes.txt",
        "Ann/Thumbs.db",
        "Ann/.DS_Store",
        ".DS_Store",
    ] {
        std::fs::write(root.join(junk), b"junk").unwrap();
    }
    std::os::unix::fs::symlink(root.join("gone.png"), root.join("Bo Ångström/dead.png")).unwrap();
    let o = common::likeness(&["inspect", root.to_str().unwrap()]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("2 items") && out.contains("2 classes"),
        "{out}"
    );
    let r = root.display();
    for said in [
        format!("2 files of a format not read here (tif, gif, heic, raw, ...) left out: {r}/Ann/IMG_0001.HEIC, {r}/scan.tif; convert them"),
        format!("1 image at the top of {r} in no class folder left out: {r}/loose.png;"),
        format!("1 folder below those left out: {r}/Ann/2019;"),
        format!("1 symbolic link to a missing file left out: {r}/Bo Ångström/dead.png"),
        format!("{r} also holds 1 CSV file: {r}/regions.csv; to read the images one of them lists, give that file in place of the folder (e.g. {r}/regions.csv)"),
    ] {
        assert!(err.contains(&said), "wanted `{said}` in:\n{err}");
    }
    assert!(
        !err.contains("notes.txt") && !err.contains("Thumbs"),
        "{err}"
    );
    // The swell set's layout: manifests beside `images/PERSON/*.png`. The
    // folder read as classes fails at `images`, and the note names the
    // manifests first (they came after `images` and were never named).
    let sw = root.join("swell");
    std::fs::create_dir_all(sw.join("images/p")).unwrap();
    png(&sw.join("images/p/a.png"));
    std::fs::write(sw.join("train.csv"), b"path,label\nimages/p/a.png,x\n").unwrap();
    let o = common::likeness(&["inspect", sw.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    let said = format!("also holds 1 CSV file: {0}/train.csv; to read the images one of them lists, give that file in place of the folder (e.g. {0}/train.csv)", sw.display());
    assert!(err.contains(&said), "wanted `{said}` in:\n{err}");
}

/// A folder likeness wrote, given as data (`likeness inspect runs/m`), says
/// what it is and what reads it; it once said "no labelled images found".
/// A data folder that merely holds such a file among its classes still
/// opens.
#[test]
fn a_model_index_or_embeddings_folder_given_as_data_says_what_it_is() {
    let cases: [(&[&str], &str, &str); 4] = [
        (
            &["model.json", "weights.safetensors"],
            "is a model folder (model.json",
            "likeness embed --model",
        ),
        (
            &["manifest.json", "graph.bin", "vectors.npy"],
            "is an index folder (manifest.json, graph.bin)",
            "likeness verify --index",
        ),
        // A grown index names its graph by generation.
        (
            &["manifest.json", "graph.3.bin"],
            "is an index folder",
            "likeness eval --index",
        ),
        (
            &["embed.json", "vectors.npy", "labels.npy"],
            "is an embeddings folder (embed.json",
            "likeness build --vectors",
        ),
    ];
    for (files, what, command) in cases {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            std::fs::write(dir.path().join(f), "{}").unwrap();
        }
        match Dataset::open(dir.path()) {
            Err(e @ Error::NotData { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(what), "{files:?}: {msg}");
                assert!(msg.contains(command), "{files:?}: {msg}");
            }
            other => panic!("{files:?}: expected NotData, got {other:?}"),
        }
    }
    // A manifest.json alone is no index: the folder is only empty.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.json"), "{}").unwrap();
    assert!(matches!(
        Dataset::open(dir.path()),
        Err(Error::EmptyDataset { .. })
    ));
    // Classes beside a stray model.json: data, as before.
    let data = class_folder_with(&[("a.png", &[])]);
    std::fs::write(data.path().join("model.json"), "{}").unwrap();
    assert_eq!(Dataset::open(data.path()).unwrap().len(), 1);
}

#[test]
fn manifest_bad_rows_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let a = common::johns_image("John_Salley");
    let cases = [
        (format!("{},a,1,2\n", a.display()), 1, "expected 2 fields"),
        (
            format!("{},a\n{},b,1,2,x,4\n", a.display(), a.display()),
            2,
            "w = `x`",
        ),
        (format!("{},a,1,2,0,4\n", a.display()), 1, "at least 1"),
        (format!("{},\n", a.display()), 1, "empty label"),
        (format!("{},a,-1,2,3,4\n", a.display()), 1, "non-negative"),
    ];
    for (text, line, needle) in cases {
        let csv = dir.path().join("bad.csv");
        write(&csv, &text);
        match Dataset::open(&csv) {
            Err(e @ Error::Manifest { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(&format!("bad.csv:{line}:")), "{msg}");
                assert!(msg.contains(needle), "{msg} lacks {needle}");
            }
            other => panic!("expected a manifest error for {text:?}, got {other:?}"),
        }
    }
    let csv = dir.path().join("empty.csv");
    write(&csv, "path,label\n");
    assert!(matches!(
        Dataset::open(&csv),
        Err(Error::EmptyDataset { .. })
    ));
}

/// A PNG whose header claims `w`×`h` pixels, with almost no data behind it.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&ihdr);
    let mut crc = flate2::Crc::new();
    crc.update(&ihdr);
    out.extend_from_slice(&crc.sum().to_be_bytes());
    // One small IDAT (a few compressed rows) and IEND: the decoder reads the
    // header without complaint, and only the full decode would need 10 GB.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![0u8; 4096]).unwrap();
    let data = z.finish().unwrap();
    for (kind, body) in [(&b"IDAT"[..], &data[..]), (&b"IEND"[..], &[][..])] {
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(body);
        let mut crc = flate2::Crc::new();
        crc.update(&chunk);
        out.extend_from_slice(&chunk);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    out
}

#[test]
fn decompression_bombs_are_refused_before_decoding() {
    let dir = class_folder_with(&[("bomb.png", &png_header_only(100_000, 100_000))]);
    let ds = Dataset::open(dir.path()).unwrap();
    match ds.load(0) {
        Err(Error::App(likeness_app::Error::ImageTooLarge {
            width: 100_000,
            height: 100_000,
            ..
        })) => {}
        other => panic!("expected ImageTooLarge, got {other:?}"),
    }
    // A real image over a user-set limit.
    let ds = Dataset::open(common::johns())
        .unwrap()
        .with_limits(DecodeLimits {
            max_pixels: 100 * 100,
            ..DecodeLimits::default()
        });
    assert!(matches!(
        ds.load(0),
        Err(Error::App(likeness_app::Error::ImageTooLarge {
            pixels: 22_500,
            ..
        }))
    ));
}

#[test]
fn broken_idx_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("x-images-idx3-ubyte");
    let labels = dir.path().join("x-labels-idx1-ubyte");
    // Header: 3 dims, 2 images of 2x2, but only 5 bytes of pixels.
    let mut img = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2];
    img.extend_from_slice(&[1, 2, 3, 4, 5]);
    std::fs::write(&images, &img).unwrap();
    std::fs::write(&labels, [0, 0, 8, 1, 0, 0, 0, 2, 0, 1]).unwrap();
    match Dataset::open(&images) {
        Err(e @ Error::App(likeness_app::Error::Idx { .. })) => {
            assert!(e.to_string().contains("truncated"), "{e}")
        }
        other => panic!("expected Idx error, got {other:?}"),
    }
    // Whole images but one label too few.
    img.extend_from_slice(&[6, 7, 8]);
    std::fs::write(&images, &img).unwrap();
    std::fs::write(&labels, [0, 0, 8, 1, 0, 0, 0, 1, 0]).unwrap();
    assert!(matches!(
        Dataset::open(&images),
        Err(Error::App(likeness_app::Error::Idx { .. }))
    ));
    // Labels file missing.
    std::fs::remove_file(&labels).unwrap();
    assert!(matches!(
        Dataset::open(&images),
        Err(Error::App(likeness_app::Error::NotFound { .. }))
    ));
    // Wrong magic, and a gzip stream cut short.
    std::fs::write(&labels, [1, 2, 8, 1, 0, 0, 0, 2, 0, 1]).unwrap();
    assert!(matches!(
        Dataset::open(&images),
        Err(Error::App(likeness_app::Error::Idx { .. }))
    ));
    let gz = std::fs::read(likeness::cache::fashion_mnist_dir().join("t10k-labels-idx1-ubyte.gz"))
        .unwrap();
    std::fs::write(&labels, &gz[..gz.len() / 2]).unwrap();
    match Dataset::open(&images) {
        Err(e @ Error::App(likeness_app::Error::Idx { .. })) => {
            assert!(e.to_string().contains("gzip"), "{e}")
        }
        other => panic!("expected a gzip error, got {other:?}"),
    }
}

#[test]
fn unknown_source_kind_says_what_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("vectors.bin");
    std::fs::write(&f, b"x").unwrap();
    match Dataset::open(&f) {
        Err(e @ Error::UnknownSource { .. }) => assert!(e.to_string().contains(".csv"), "{e}"),
        other => panic!("expected UnknownSource, got {other:?}"),
    }
}

// ---- manifests with a header: scores, subjects, sides (issue 14) ----

#[test]
fn manifest_header_names_columns_in_any_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = common::johns_image("John_Salley");
    let csv = dir.path().join("graded.csv");
    write(
        &csv,
        &format!(
            "side,score,path,subject,label,x,y,w,h\n\
             left,0.1,{a},face1,cheek,15,62,36,36\n\
             RIGHT,0.6,{a},face1,cheek,99,62,36,36\n\
             ,,{a},,whole,,,,\n\
             left,-2.5e-1,{a},face2,under_eye,22,50,40,20\n",
            a = a.display()
        ),
    );
    let ds = Dataset::open(&csv).unwrap();
    assert_eq!(ds.len(), 4);
    assert_eq!(ds.classes(), ["cheek", "under_eye", "whole"]);
    let it = ds.items();
    assert_eq!(it[0].score, Some(0.1));
    assert_eq!(it[1].score, Some(0.6));
    assert_eq!(it[2].score, None);
    assert_eq!(it[3].score, Some(-0.25));
    assert_eq!(it[0].subject.as_deref(), Some("face1"));
    assert_eq!(it[2].subject, None);
    assert_eq!(
        (it[0].side, it[1].side, it[2].side),
        (Some(Side::Left), Some(Side::Right), None)
    );
    assert_eq!(
        it[1].region.map(|r| (r.x, r.y, r.w, r.h)),
        Some((99, 62, 36, 36))
    );
    assert_eq!(it[2].region, None, "an empty box is the whole image");
    // scores.npy's values: NaN where an item has no score.
    let s = ds.scores().unwrap();
    assert!(s[2].is_nan() && s[1] == 0.6);
    assert_eq!(ds.pairings().unwrap()[1].side, Some(Side::Right));
}

#[test]
fn headerless_manifest_keeps_its_meaning() {
    let dir = tempfile::tempdir().unwrap();
    let a = common::johns_image("John_Salley");
    let csv = dir.path().join("plain.csv");
    write(&csv, &format!("{a},x\n{a},y,1,2,3,4\n", a = a.display()));
    let ds = Dataset::open(&csv).unwrap();
    assert_eq!(ds.len(), 2);
    assert_eq!(ds.region_count(), 1);
    assert!(ds.scores().is_none());
    assert!(ds.pairings().is_none());
    assert_eq!(ds.items()[0].score, None);
}

#[test]
fn manifest_bad_scores_sides_and_headers_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let a = common::johns_image("John_Salley");
    let a = a.display();
    let cases = [
        (
            format!("path,label,score\n{a},c,0.5\n{a},c,high\n"),
            3,
            "score `high` is not a number",
        ),
        (
            format!("path,label,score\n{a},c,inf\n"),
            2,
            "not a finite number",
        ),
        (
            format!("path,label,score\n{a},c,NaN\n"),
            2,
            "not a finite number",
        ),
        // R's write.csv marks a missing grade `NA`: the refusal says what
        // an ungraded row holds instead.
        (
            format!("path,label,score\n{a},c,1\n{a},c,NA\n"),
            3,
            "score `NA` is not a number (leave the cell empty for a row without a grade)",
        ),
        (
            format!("path,label,score\n{a},c,nan\n"),
            2,
            "(leave the cell empty for a row without a grade)",
        ),
        // A spreadsheet's "CSV" in a decimal-comma locale: `;` between
        // cells, read as one field.
        (
            format!("path;label;score\n{a};c;1\n"),
            1,
            "found 1; for score, subject or side columns start the file with a header row; \
             the row has no comma but `;`: manifests are comma-separated",
        ),
        (format!("{a}\tc\n"), 1, "the row has no comma but `\\t`"),
        (
            format!("path,label,side\n{a},c,up\n"),
            2,
            "side `up` must be `left`, `right` or empty",
        ),
        (
            format!("path,label,grade\n{a},c,1\n"),
            1,
            "unknown column `grade`",
        ),
        (
            format!("path,label,score,score\n{a},c,1,1\n"),
            1,
            "appears twice",
        ),
        (format!("path,score\n{a},1\n"), 1, "no `label` column"),
        (
            format!("path,label,x,y\n{a},c,1,2\n"),
            1,
            "all four columns",
        ),
        (
            format!("path,label\n{a},c,1\n"),
            2,
            "3 fields but the header names 2",
        ),
        (format!("path,label,x,y,w,h\n{a},c,1,,3,4\n"), 2, "y = ``"),
    ];
    for (text, line, needle) in cases {
        let csv = dir.path().join("bad.csv");
        write(&csv, &text);
        match Dataset::open(&csv) {
            Err(e @ Error::Manifest { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(&format!("bad.csv:{line}:")), "{msg}");
                assert!(msg.contains(needle), "{msg} lacks {needle}");
            }
            other => panic!("expected a manifest error for {text:?}, got {other:?}"),
        }
    }
}
