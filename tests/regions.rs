//! `likeness regions`: the ported landmark model against dlib's own output,
//! and the regions against the 68 marked landmarks of dlib's examples/faces
//! (43 faces in 9 photos, many only 37–52 px wide), upright, mirrored and
//! rotated by 15°.
mod common;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use image::{DynamicImage, RgbImage};
use likeness_app::face::{self, FaceBox, FaceFinder, Landmarks, Side};

fn models() -> PathBuf {
    let dir = face::models::default_dir();
    assert!(
        dir.join("SHA256SUMS").exists(),
        "{} has no face models: run `make face-models` (or `make test`, which fetches them) first",
        dir.display()
    );
    dir
}

fn faces_dir() -> PathBuf {
    common::real_data(likeness::cache::dlib_faces_dir())
}

fn finder(landmarks: Landmarks) -> FaceFinder {
    FaceFinder::open(&models(), landmarks, face::DEFAULT_MIN_FACE).unwrap()
}

/// An attribute of a tag that `split` cut at its name, e.g. `file='a.jpg' …`.
fn value(tag: &str, name: &str) -> String {
    let tag = format!(" {tag}");
    let key = format!(" {name}='");
    let at = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + key.len();
    tag[at..at + tag[at..].find('\'').unwrap()].to_string()
}

/// dlib's imglab XML: each image's faces, as 68 points each.
fn marked_faces(xml: &Path) -> Vec<(String, Vec<Vec<[f32; 2]>>)> {
    let text = std::fs::read_to_string(xml).unwrap();
    let mut images = Vec::new();
    for image in text.split("<image ").skip(1) {
        let file = value(image, "file");
        let faces: Vec<Vec<[f32; 2]>> = image
            .split("<box ")
            .skip(1)
            .map(|b| {
                b.split("<part ")
                    .skip(1)
                    .map(|p| {
                        [
                            value(p, "x").parse().unwrap(),
                            value(p, "y").parse().unwrap(),
                        ]
                    })
                    .collect()
            })
            .collect();
        assert!(faces.iter().all(|f| f.len() == 68));
        images.push((file, faces));
    }
    images
}

fn centre(points: &[[f32; 2]]) -> [f32; 2] {
    let n = points.len() as f32;
    [
        points.iter().map(|p| p[0]).sum::<f32>() / n,
        points.iter().map(|p| p[1]).sum::<f32>() / n,
    ]
}

/// Turns the image by `degrees` (clockwise) about its centre onto a canvas
/// that holds all of it; returns the picture and the map of points.
fn rotate(image: &RgbImage, degrees: f32) -> (RgbImage, impl Fn([f32; 2]) -> [f32; 2]) {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let (c, s) = (degrees.to_radians().cos(), degrees.to_radians().sin());
    let (nw, nh) = (
        (w * c.abs() + h * s.abs()).ceil(),
        (w * s.abs() + h * c.abs()).ceil(),
    );
    let map = move |p: [f32; 2]| {
        let (x, y) = (p[0] - w / 2.0, p[1] - h / 2.0);
        [c * x - s * y + nw / 2.0, s * x + c * y + nh / 2.0]
    };
    let out = RgbImage::from_fn(nw as u32, nh as u32, |x, y| {
        // The inverse turn, bilinear as a photo editor turns; grey outside.
        let (u, v) = (x as f32 - nw / 2.0, y as f32 - nh / 2.0);
        let (sx, sy) = (c * u + s * v + w / 2.0, -s * u + c * v + h / 2.0);
        if sx < 0.0 || sy < 0.0 || sx > w - 1.0 || sy > h - 1.0 {
            return image::Rgb([128, 128, 128]);
        }
        let (x0, y0) = (sx.floor() as u32, sy.floor() as u32);
        let (x1, y1) = (
            (x0 + 1).min(image.width() - 1),
            (y0 + 1).min(image.height() - 1),
        );
        let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
        let p = |x, y, k| image.get_pixel(x, y)[k] as f32;
        image::Rgb([0, 1, 2].map(|k| {
            let top = p(x0, y0, k) * (1.0 - fx) + p(x1, y0, k) * fx;
            let bottom = p(x0, y1, k) * (1.0 - fx) + p(x1, y1, k) * fx;
            (top * (1.0 - fy) + bottom * fy).round() as u8
        }))
    });
    (out, map)
}

#[derive(Default, Debug)]
struct Tally {
    marked: usize,
    found: usize,
    eyes_inside: usize,
    bad_under_eye: Vec<String>,
    bad_cheek: Vec<String>,
}

/// Finds the faces of one view of a photo and checks each marked face's
/// regions. `truth` holds the marked points in this view; `mirrored` swaps
/// which marked eye is the subject's left.
fn check_view(
    finder: &FaceFinder,
    image: &DynamicImage,
    truth: &[Vec<[f32; 2]>],
    mirrored: bool,
    what: &str,
    t: &mut Tally,
) {
    let faces = finder.find(image);
    let boxes = face::region_boxes(&faces, &[], image.width(), image.height());
    for (n, marks) in truth.iter().enumerate() {
        t.marked += 1;
        let (mut right_eye, mut left_eye) = (centre(&marks[36..42]), centre(&marks[42..48]));
        if mirrored {
            std::mem::swap(&mut right_eye, &mut left_eye);
        }
        let nose_tip = marks[30];
        let mid = [
            (left_eye[0] + right_eye[0]) / 2.0,
            (left_eye[1] + right_eye[1]) / 2.0,
        ];
        let iod =
            ((left_eye[0] - right_eye[0]).powi(2) + (left_eye[1] - right_eye[1]).powi(2)).sqrt();
        // The marked face's own axes: u towards its left eye, v down.
        let ex = [
            (left_eye[0] - right_eye[0]) / iod,
            (left_eye[1] - right_eye[1]) / iod,
        ];
        let frame = |p: [f32; 2]| {
            let (x, y) = (p[0] - mid[0], p[1] - mid[1]);
            [x * ex[0] + y * ex[1], -x * ex[1] + y * ex[0]]
        };
        // The found face whose eyes' midpoint is nearest, within half an
        // inter-ocular distance.
        let Some(k) = (0..faces.len())
            .map(|k| {
                let o = faces[k].frame.to_image([0.0, 0.0]);
                (
                    k,
                    ((o[0] - mid[0]).powi(2) + (o[1] - mid[1]).powi(2)).sqrt(),
                )
            })
            .filter(|&(_, d)| d < 0.5 * iod)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(k, _)| k)
        else {
            continue;
        };
        t.found += 1;
        let get = |name: &str, side: Side| {
            boxes[k]
                .iter()
                .find(|b| b.placed.name == name && b.placed.side == side)
        };
        let inside = |b: Option<&face::RegionBox>, p: [f32; 2]| {
            b.is_some_and(|b| {
                let r = b.region;
                p[0] >= r.x as f32
                    && p[0] <= (r.x + r.w) as f32
                    && p[1] >= r.y as f32
                    && p[1] <= (r.y + r.h) as f32
            })
        };
        if inside(get("eye", Side::Left), left_eye) && inside(get("eye", Side::Right), right_eye) {
            t.eyes_inside += 1;
        }
        let eye_v = frame(left_eye)[1].max(frame(right_eye)[1]);
        for side in [Side::Left, Side::Right] {
            let label = format!("{what} face {n} {side:?}");
            // Below the eye: the under-eye box's centre, and the cheek's
            // whole rectangle, lie lower along the face than the eye's centre.
            match get("under_eye", side) {
                Some(b) if frame(centre(&b.placed.corners))[1] > eye_v => {}
                _ => t.bad_under_eye.push(label.clone()),
            }
            let nose_u = frame(nose_tip)[0];
            // How far the cheek's rectangle stays below the eye and on its
            // side of the nose tip, in inter-ocular distances (> 0: it does).
            let margin = get("cheek", side).map(|b| {
                b.placed.corners.iter().fold(f32::INFINITY, |m, &c| {
                    let [u, v] = frame(c);
                    let across = if side == Side::Left {
                        u - nose_u
                    } else {
                        nose_u - u
                    };
                    m.min(across.min(v - eye_v) / iod)
                })
            });
            match margin {
                Some(m) if m > 0.0 => {}
                _ => t.bad_cheek.push(format!("{label} (margin {margin:?})")),
            }
        }
    }
}

#[test]
fn regions_sit_on_dlibs_marked_faces_upright_mirrored_and_rotated() {
    let dir = faces_dir();
    let finder = finder(Landmarks::Dlib5);
    let mut views = [Tally::default(), Tally::default(), Tally::default()];
    for xml in [
        "training_with_face_landmarks.xml",
        "testing_with_face_landmarks.xml",
    ] {
        for (file, truth) in marked_faces(&dir.join(xml)) {
            let image = image::open(dir.join(&file)).unwrap().to_rgb8();
            check_view(
                &finder,
                &DynamicImage::ImageRgb8(image.clone()),
                &truth,
                false,
                &file,
                &mut views[0],
            );
            let width = image.width() as f32;
            let flipped: Vec<Vec<[f32; 2]>> = truth
                .iter()
                .map(|f| f.iter().map(|p| [width - 1.0 - p[0], p[1]]).collect())
                .collect();
            let mirror = image::imageops::flip_horizontal(&image);
            check_view(
                &finder,
                &DynamicImage::ImageRgb8(mirror),
                &flipped,
                true,
                &file,
                &mut views[1],
            );
            let (turned, map) = rotate(&image, 15.0);
            let moved: Vec<Vec<[f32; 2]>> = truth
                .iter()
                .map(|f| f.iter().map(|&p| map(p)).collect())
                .collect();
            check_view(
                &finder,
                &DynamicImage::ImageRgb8(turned),
                &moved,
                false,
                &file,
                &mut views[2],
            );
        }
    }
    let names = ["upright", "mirrored", "rotated 15°"];
    for (t, view) in views.iter().zip(names) {
        eprintln!("{view}: {t:?}");
    }
    for (t, view) in views.iter().zip(names) {
        assert_eq!(t.marked, 43, "{view}");
        assert!(
            t.found * 4 >= t.marked * 3,
            "{view}: found {} of {} faces, under 75%",
            t.found,
            t.marked
        );
        assert!(
            t.eyes_inside * 10 >= t.found * 9,
            "{view}: both eye boxes hold their marked eye centre for {} of {} found faces, under 90%",
            t.eyes_inside,
            t.found
        );
        assert!(
            t.bad_under_eye.is_empty(),
            "{view}: under-eye boxes not below their eye: {:?}",
            t.bad_under_eye
        );
        assert!(
            t.bad_cheek.is_empty(),
            "{view}: cheek boxes off their place: {:?}",
            t.bad_cheek
        );
    }
}

#[derive(serde::Deserialize)]
struct Reference {
    faces: Vec<ReferenceFace>,
}

#[derive(serde::Deserialize)]
struct ReferenceFace {
    image: String,
    /// dlib's rectangle: left, top, right, bottom (inclusive).
    #[serde(rename = "box")]
    rect: [f32; 4],
    p5: Vec<[f32; 2]>,
    p68: Vec<[f32; 2]>,
}

/// The Rust port of dlib's shape predictor, given dlib's own face boxes,
/// places dlib's points (dlib rounds them to whole pixels).
#[test]
fn the_ported_landmark_models_give_dlibs_points() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dlib-landmarks.json");
    let reference: Reference =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    for (landmarks, name) in [
        (Landmarks::Dlib5, "5-point"),
        (Landmarks::Dlib68, "68-point"),
    ] {
        let finder = finder(landmarks);
        let (mut points, mut close, mut worst, mut total) = (0usize, 0usize, 0f32, 0f32);
        for f in &reference.faces {
            let path = match f.image.split_once('/') {
                Some(("johns", rest)) => common::johns().join(rest),
                Some(("dlib-faces", rest)) => faces_dir().join(rest),
                _ => panic!("unknown fixture image {}", f.image),
            };
            let rgb = image::open(&path).unwrap().to_rgb8();
            let grey: Vec<u8> = rgb
                .pixels()
                .map(|p| ((p[0] as u16 + p[1] as u16 + p[2] as u16) / 3) as u8)
                .collect();
            let view = face::shape_predictor::Gray {
                pixels: &grey,
                width: rgb.width(),
                height: rgb.height(),
            };
            let [l, t, r, b] = f.rect;
            let bbox = FaceBox {
                x: l,
                y: t,
                w: r - l + 1.0,
                h: b - t + 1.0,
                score: 0.0,
            };
            let want = if landmarks == Landmarks::Dlib5 {
                &f.p5
            } else {
                &f.p68
            };
            for (ours, theirs) in finder.locate(&view, bbox).iter().zip(want) {
                let d = (ours[0] - theirs[0]).abs().max((ours[1] - theirs[1]).abs());
                worst = worst.max(d);
                total += d;
                close += usize::from(d <= 1.0);
                points += 1;
            }
        }
        let mean = total / points as f32;
        eprintln!("{name}: {close} of {points} points within 1 px of dlib's, mean {mean:.3} px, worst {worst:.2} px");
        // JPEG decoders differ by a grey level here and there, which can
        // turn a tree's split; nearly every point must still agree.
        assert!(
            close * 100 >= points * 90,
            "{name}: only {close} of {points} points within 1 px"
        );
    }
}

/// The README's path: a folder of photos (one per person folder, one loose,
/// one with no face, one unreadable) → `regions` → `index` → `query` with a
/// region of a photo; and `asymmetry` straight from the photos.
#[test]
fn photos_to_regions_to_an_index_and_a_region_query() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    for person in ["John_Salley", "John_Savage"] {
        std::fs::create_dir_all(photos.join(person)).unwrap();
        for f in std::fs::read_dir(common::johns().join(person))
            .unwrap()
            .take(3)
        {
            let f = f.unwrap().path();
            std::fs::copy(&f, photos.join(person).join(f.file_name().unwrap())).unwrap();
        }
    }
    let loose = common::johns_image("John_Simm");
    std::fs::copy(&loose, photos.join("simm.jpg")).unwrap();
    image::RgbImage::from_pixel(200, 150, image::Rgb([90, 90, 90]))
        .save(photos.join("wall.png"))
        .unwrap();
    std::fs::write(photos.join("broken.jpg"), b"not a jpeg").unwrap();

    // --out and --landmarks-out in folders that do not exist yet.
    let csv = dir.path().join("out").join("regions.csv");
    let overlay = dir.path().join("overlay");
    let points = dir.path().join("landmarks").join("points.csv");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "regions",
            "--data",
            photos.to_str().unwrap(),
            "--out",
            csv.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        common::likeness(&args)
    };
    // An unreadable photo stops the run, naming it and the way past it.
    let o = run(&[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("broken.jpg") && err.contains("--skip-bad"),
        "{err}"
    );
    assert!(!csv.exists(), "nothing is written when the run stops");
    let o = run(&[
        "--skip-bad",
        "--overlay",
        overlay.to_str().unwrap(),
        "--landmarks-out",
        points.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("1 photo with no face") && err.contains("wall.png"),
        "{err}"
    );
    assert!(
        err.contains("1 photo skipped as unreadable") && err.contains("broken.jpg"),
        "{err}"
    );

    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "path,label,x,y,w,h,subject,side,face,angle,along,across"
    );
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    let subjects: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[6].as_str()).collect();
    assert!(
        subjects.contains("John_Salley")
            && subjects.contains("John_Savage")
            && subjects.contains("simm"),
        "{subjects:?}"
    );
    for (label, side) in [
        ("eye", "left"),
        ("eye", "right"),
        ("under_eye", "left"),
        ("cheek", "right"),
        ("nose", ""),
        ("mouth", ""),
    ] {
        assert!(
            rows.iter().any(|r| r[1] == label && r[7] == side),
            "no {label}/{side} row"
        );
    }
    // The subject's left eye is on the image's right.
    let first = |label: &str, side: &str| {
        rows.iter().find(|r| r[1] == label && r[7] == side).unwrap()[2]
            .parse::<u32>()
            .unwrap()
    };
    assert!(first("eye", "left") > first("eye", "right"));
    assert_eq!(
        std::fs::read_dir(&overlay).unwrap().count(),
        8,
        "an overlay per readable photo"
    );
    assert!(std::fs::read_to_string(&points).unwrap().lines().count() > 5 * 7);

    // The manifest is a data source like any other.
    let model = dir.path().join("model");
    common::train_small(&common::johns(), &model, 1, 4, &[]);
    let index = dir.path().join("index");
    let o = common::likeness(&[
        "index",
        "--model",
        model.to_str().unwrap(),
        "--data",
        csv.to_str().unwrap(),
        "--out",
        index.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let eye = rows
        .iter()
        .find(|r| r[1] == "eye" && r[7] == "left")
        .unwrap();
    let region = format!("{},{},{},{}", eye[2], eye[3], eye[4], eye[5]);
    let o = common::likeness(&[
        "query",
        "--index",
        index.to_str().unwrap(),
        "--image",
        &eye[0],
        "--region",
        &region,
        "-k",
        "3",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let answer = String::from_utf8_lossy(&o.stdout);
    assert!(
        answer.contains("\"eye\""),
        "the nearest regions of an eye include eyes: {answer}"
    );

    // asymmetry from the photos: regions first, then a pair per face and label.
    let asym = dir.path().join("asym");
    let only_faces = dir.path().join("faces");
    std::fs::create_dir_all(&only_faces).unwrap();
    std::fs::copy(&loose, only_faces.join("simm.jpg")).unwrap();
    let o = common::likeness(&[
        "asymmetry",
        "--model",
        model.to_str().unwrap(),
        "--data",
        only_faces.to_str().unwrap(),
        "--out",
        asym.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(asym.join("regions.csv").exists());
    let pairs = std::fs::read_to_string(asym.join("asymmetry.csv")).unwrap();
    for label in ["eye", "under_eye", "cheek", "brow"] {
        assert!(pairs.contains(label), "no {label} pair in\n{pairs}");
    }
}

/// A large upload (`POST /faces`) is scanned at [`face::DETECT_SIDE`] on
/// its long side: dlib's bald_guys.jpg at exactly that size, and the same
/// pixels 4 times larger (8192 px, 52 MP), give the same faces, boxes and
/// landmarks, 4 times larger, to within a pixel or two of the small photo.
/// (Scanned whole, the large one took 7.1 s and found a 25th face.)
#[test]
fn a_large_photo_gives_the_faces_of_the_small_one_scaled() {
    let f = finder(Landmarks::Dlib5);
    let photo = image::open(faces_dir().join("bald_guys.jpg"))
        .unwrap()
        .to_rgb8();
    let (w, h) = photo.dimensions();
    let side = face::DETECT_SIDE;
    let (sw, sh) = (side, (h as f32 * side as f32 / w as f32).round() as u32);
    assert!(w >= h, "the photo is landscape");
    let small = image::imageops::resize(&photo, sw, sh, image::imageops::FilterType::Triangle);
    const TIMES: u32 = 4;
    let large = image::imageops::resize(
        &small,
        sw * TIMES,
        sh * TIMES,
        image::imageops::FilterType::Nearest,
    );
    let a = f.find(&DynamicImage::ImageRgb8(small));
    let b = f.find(&DynamicImage::ImageRgb8(large));
    assert!(a.len() >= 20, "{} faces in bald_guys.jpg", a.len());
    assert_eq!(a.len(), b.len(), "as many faces in the large photo");
    let t = TIMES as f32;
    for (x, y) in a.iter().zip(&b) {
        let (p, q) = (x.bbox, y.bbox);
        for (u, v) in [
            (p.x, q.x / t),
            (p.y, q.y / t),
            (p.w, q.w / t),
            (p.h, q.h / t),
        ] {
            assert!((u - v).abs() <= 1.0, "box {p:?} against {q:?} / {TIMES}");
        }
        for (u, v) in x.points.iter().zip(&y.points) {
            let d = (u[0] - v[0] / t).hypot(u[1] - v[1] / t);
            // 2.6 px (1.2%) at most on these faces; sampled pixels differ
            // where the enlarged photo's 4×4 blocks meet.
            assert!(
                d <= 0.015 * p.w,
                "landmark {u:?} against {v:?} / {TIMES}: {d} px on a {} px face",
                p.w
            );
        }
    }
}

/// dlib's aligned face chips are told from other square face images:
/// every johns crop but the one whose face the detector misses is a chip;
/// the same faces off-centre in a larger canvas, and squares of dlib's
/// examples' photos, are not.
#[test]
fn aligned_face_chips_are_told_from_other_face_images() {
    use likeness_app::face::chip;
    let f = finder(Landmarks::Dlib5);
    let (mut chips, mut photos, mut off_found) = (0, 0, 0);
    for person in std::fs::read_dir(common::johns()).unwrap() {
        let person = person.unwrap().path();
        if !person.is_dir() {
            continue;
        }
        for p in std::fs::read_dir(&person).unwrap() {
            let img = image::open(p.unwrap().path()).unwrap();
            photos += 1;
            if chip::is_chip(&f, &img) {
                chips += 1;
                let mut canvas = RgbImage::new(300, 300);
                image::imageops::overlay(&mut canvas, &img.to_rgb8(), 140, 20);
                let off = DynamicImage::ImageRgb8(canvas);
                if !f.find(&off).is_empty() {
                    off_found += 1;
                    assert!(!chip::is_chip(&f, &off), "an off-centre face is no chip");
                }
            }
        }
    }
    assert_eq!((chips, photos), (54, 55));
    assert!(off_found > 40, "{off_found} off-centre faces found");
    let photos: Vec<PathBuf> = std::fs::read_dir(faces_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    let mut faces = 0;
    for p in photos {
        let img = image::open(&p).unwrap();
        let side = img.width().min(img.height());
        let square = img.crop_imm(0, 0, side, side);
        faces += f.find(&square).len();
        assert!(!chip::is_chip(&f, &square), "{}", p.display());
    }
    assert!(faces > 10, "{faces} faces in the photos");
}

/// `regions --chips`: every face cut as dlib's aligned chip, listed with
/// its person. A johns crop (already a dlib chip) cut again is nearly
/// itself; the chips of dlib's example photos count as chips, so `train`
/// would choose dlib's face descriptor for them.
#[test]
fn regions_cut_aligned_face_chips_and_list_them() {
    use likeness_app::face::chip;
    let tmp = tempfile::tempdir().unwrap();
    let johns = tmp.path().join("johns");
    for person in ["John_Salley", "John_Simm"] {
        std::fs::create_dir_all(johns.join(person)).unwrap();
        for e in std::fs::read_dir(common::johns().join(person)).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, johns.join(person).join(p.file_name().unwrap())).unwrap();
        }
    }
    let chips = tmp.path().join("chips");
    let o = common::likeness(&[
        "regions",
        "--data",
        johns.to_str().unwrap(),
        "--out",
        tmp.path().join("r.csv").to_str().unwrap(),
        "--chips",
        chips.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    // A folder a person: labels `train` can learn from, so no note.
    assert!(!err.contains("a folder of their own"), "{err}");
    let listed = std::fs::read_to_string(chips.join("chips.csv")).unwrap();
    let rows: Vec<(String, String)> = listed
        .lines()
        .skip(1)
        .map(|l| {
            let (p, label) = l.rsplit_once(',').unwrap();
            (p.to_string(), label.to_string())
        })
        .collect();
    assert_eq!(rows.len(), 22, "one chip a face: {listed}");
    let (mut worst, mut total) = (0f64, 0f64);
    for (path, label) in &rows {
        assert!(label == "John_Salley" || label == "John_Simm", "{label}");
        let cut = image::open(path).unwrap().to_rgb8();
        assert_eq!(cut.dimensions(), (150, 150));
        // The photo it came from: the chip's name is NNNNN-STEM-K.png.
        let stem = Path::new(path)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let stem = &stem[6..stem.rfind('-').unwrap()];
        let source = image::open(johns.join(label).join(format!("{stem}.jpg")))
            .unwrap()
            .to_rgb8();
        // Mean absolute difference over the middle (the edges may fall
        // outside the photo, black).
        let (mut sum, mut n) = (0f64, 0f64);
        for y in 25..125 {
            for x in 25..125 {
                let (a, b) = (cut.get_pixel(x, y).0, source.get_pixel(x, y).0);
                for c in 0..3 {
                    sum += (f64::from(a[c]) - f64::from(b[c])).abs();
                    n += 1.0;
                }
            }
        }
        worst = worst.max(sum / n);
        total += sum / n;
    }
    // Measured: 5.3 to 20.8 levels, 13.0 on average (our 5 points and
    // least squares against dlib's own chip geometry; a misplaced or
    // mirrored cut differs by several times that).
    let mean = total / rows.len() as f64;
    assert!(
        worst < 30.0 && mean < 16.0,
        "johns chips cut again differ by {mean} levels on average, {worst} at worst"
    );
    let f = finder(Landmarks::Dlib5);
    let o = common::likeness(&[
        "regions",
        "--data",
        faces_dir().to_str().unwrap(),
        "--out",
        tmp.path().join("f.csv").to_str().unwrap(),
        "--chips",
        tmp.path().join("fchips").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    // A flat folder: one label a photo, which `train` cannot learn from;
    // the run says so and how to label them.
    assert!(
        err.contains("put each person's photos in a folder of their own"),
        "{err}"
    );
    let (mut ok, mut all) = (0, 0);
    for e in std::fs::read_dir(tmp.path().join("fchips")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "png") {
            all += 1;
            ok += usize::from(chip::is_chip(&f, &image::open(&p).unwrap()));
        }
    }
    // The chip's geometry is the 5-point model's: the 68-point one is refused.
    let o = common::likeness(&[
        "regions",
        "--data",
        johns.to_str().unwrap(),
        "--out",
        tmp.path().join("r68.csv").to_str().unwrap(),
        "--chips",
        tmp.path().join("chips68").to_str().unwrap(),
        "--landmarks",
        "dlib68",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("drop --landmarks dlib68"),
        "{err}"
    );
    // 61 of 66: the share `train` needs to choose dlib's descriptor.
    assert!(
        all >= 60 && ok as f64 >= likeness::train::defaults::FACE_CHIP_SHARE * all as f64,
        "{ok} of {all} chips"
    );
}

/// A user's folder of photos, as it comes: a cut JPEG is skipped as
/// unreadable (it decoded to grey and was "faceless"), formats not read are
/// named, and so is a link to a missing photo, and what `regions` wrote
/// into the folder is not read back as photos on the next run.
#[test]
fn a_folder_of_photos_as_it_comes() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let john = common::johns().join("John_Simm");
    let first = std::fs::read_dir(&john)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = std::fs::read(&first).unwrap();
    std::fs::write(photos.join("whole.jpg"), &bytes).unwrap();
    std::fs::write(photos.join("cut.jpg"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(photos.join("phone.heic"), b"not read").unwrap();
    // A link whose photo was moved away was passed over without a word.
    std::os::unix::fs::symlink(photos.join("moved.jpg"), photos.join("link.jpg")).unwrap();
    // A Latin-1 name (`café.jpg` from an old zip) was written as
    // `caf\u{FFFD}.jpg`, which `index` of the manifest could not find.
    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9.jpg");
    std::fs::write(photos.join(latin1), &bytes).unwrap();
    let out = tmp.path().join("r.csv");
    let run = |force: bool| {
        let overlay = photos.join("overlay");
        let mut args = vec![
            "regions",
            "--data",
            photos.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--overlay",
            overlay.to_str().unwrap(),
            "--skip-bad",
        ];
        if force {
            args.push("--force");
        }
        let o = common::likeness(&args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        err
    };
    for force in [false, true] {
        let err = run(force);
        assert!(err.contains("2 photos, 1 face ("), "{err}");
        assert!(
            err.contains("cut.jpg: cannot decode image: the JPEG is cut short"),
            "{err}"
        );
        assert!(
            err.contains("phone.heic; convert them to JPEG or PNG"),
            "{err}"
        );
        assert!(
            err.contains("1 symbolic link to a missing file left out: ")
                && err.contains("link.jpg"),
            "{err}"
        );
        assert!(
            err.contains("1 photo whose path is not UTF-8 text left out")
                && err.contains("caf\u{FFFD}.jpg; rename them in UTF-8"),
            "{err}"
        );
        // What it wrote opens as a manifest: every path in it is found.
        let o = common::likeness(&["inspect", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // Given alone, it is refused with the same advice.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_likeness"))
        .arg("regions")
        .arg("--data")
        .arg(photos.join(latin1))
        .args(["--out", out.to_str().unwrap(), "--force"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("not UTF-8 text") && err.contains("rename it"),
        "{err}"
    );
}

/// Photos with no face: the run says that none was found and what to try,
/// and does not offer the empty chips.csv to `train` (it once ended on "0
/// aligned face chips in chips, listed in chips/chips.csv (`likeness train
/// --data` it)").
#[test]
fn photos_with_no_face_say_so_and_offer_no_chips_to_train() {
    let tmp = tempfile::tempdir().unwrap();
    let photo = tmp.path().join("wall.png");
    RgbImage::from_pixel(200, 200, image::Rgb([128, 130, 140]))
        .save(&photo)
        .unwrap();
    let (out, chips) = (tmp.path().join("r.csv"), tmp.path().join("chips"));
    let o = common::likeness(&[
        "regions",
        "--data",
        photo.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--chips",
        chips.to_str().unwrap(),
    ]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{said}");
    assert!(said.contains("no face found in the one photo:"), "{said}");
    assert!(!said.contains("train --data"), "{said}");
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 1);
}

/// The gray image `FaceFinder::find` gives the detector: (r+g+b)/3.
fn detector_gray(image: &DynamicImage) -> image::GrayImage {
    let rgb = image.to_rgb8();
    let (w, h) = rgb.dimensions();
    let level =
        |p: &image::Rgb<u8>| ((u16::from(p[0]) + u16::from(p[1]) + u16::from(p[2])) / 3) as u8;
    image::GrayImage::from_fn(w, h, |x, y| image::Luma([level(rgb.get_pixel(x, y))]))
}

/// The face ids (`face` column) and subjects of a regions manifest, and
/// chips.csv's labels by chip file name (`NNNNN-STEM-K.png`).
fn subjects_and_labels(
    manifest: &Path,
    chips: &Path,
) -> (
    std::collections::BTreeSet<(String, String)>,
    std::collections::BTreeMap<String, String>,
) {
    let text = std::fs::read_to_string(manifest).unwrap();
    let faces = text
        .lines()
        .skip(1)
        .map(|l| {
            let r: Vec<&str> = l.split(',').collect();
            (r[8].to_string(), r[6].to_string())
        })
        .collect();
    let listed = std::fs::read_to_string(chips.join("chips.csv")).unwrap();
    let labels = listed
        .lines()
        .skip(1)
        .map(|l| {
            let (p, label) = l.rsplit_once(',').unwrap();
            let name = Path::new(p).file_name().unwrap().to_string_lossy();
            (name.into_owned(), label.to_string())
        })
        .collect();
    (faces, labels)
}

/// johns' John_Savage/000289 held a second "face" on an eye inside the real
/// one: `regions` counted 2 faces, named the real one `John_Savage#1` in
/// regions.csv (another person to `eval` and `asymmetry`) while chips.csv
/// called it `John_Savage`. A face inside a face is now dropped, and both
/// files name a photo's largest face by its person, the others `person#k`.
#[test]
fn a_face_inside_a_face_is_dropped_and_both_files_name_faces_alike() {
    use face::detect::{drop_nested, inside_share, NESTED_SHARE};
    let f = finder(Landmarks::Dlib5);
    let savage = std::fs::read_dir(common::johns().join("John_Savage"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("000289")
        })
        .unwrap();
    let image = image::open(&savage).unwrap();
    let all = f.detector().detect_all(&detector_gray(&image));
    let share = inside_share(&all[1], &all[0]);
    eprintln!(
        "{}: boxes {:?}, the second {share:.3} inside the first",
        savage.display(),
        all.iter().map(|b| (b.x, b.y, b.w)).collect::<Vec<_>>()
    );
    assert_eq!(all.len(), 2);
    assert!(share >= NESTED_SHARE);
    assert_eq!(f.find(&image).len(), 1);

    // dlib's group photos: faces side by side, none dropped.
    let mut most = 0f32;
    for e in std::fs::read_dir(faces_dir()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "jpg") {
            continue;
        }
        let all = f
            .detector()
            .detect_all(&detector_gray(&image::open(&p).unwrap()));
        for (i, small) in all.iter().enumerate() {
            for big in &all[..i] {
                most = most.max(inside_share(small, big));
            }
        }
        assert_eq!(drop_nested(all.clone()).len(), all.len(), "{}", p.display());
    }
    eprintln!("dlib's examples: at most {most:.3} of a face inside another");

    // End to end: that photo, and a photo of two people in a folder "pair".
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    for (person, from) in [
        ("John_Savage", savage.clone()),
        ("pair", faces_dir().join("2008_001009.jpg")),
    ] {
        std::fs::create_dir_all(photos.join(person)).unwrap();
        std::fs::copy(&from, photos.join(person).join(from.file_name().unwrap())).unwrap();
    }
    let (out, chips) = (tmp.path().join("r.csv"), tmp.path().join("chips"));
    let o = common::likeness(&[
        "regions",
        "--data",
        photos.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--chips",
        chips.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("2 photos, 3 faces"), "{err}");
    let (faces, labels) = subjects_and_labels(&out, &chips);
    let want = |v: &[(&str, &str)]| -> std::collections::BTreeSet<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    // Photos are listed folder by folder: John_Savage's is photo 0.
    assert_eq!(
        faces,
        want(&[("0#1", "John_Savage"), ("1#1", "pair"), ("1#2", "pair#2")])
    );
    let labels: Vec<(String, String)> = labels.into_iter().collect();
    let stem = savage.file_stem().unwrap().to_string_lossy();
    assert_eq!(
        labels,
        vec![
            (format!("00000-{stem}-1.png"), "John_Savage".to_string()),
            ("00001-2008_001009-1.png".to_string(), "pair".to_string()),
            ("00001-2008_001009-2.png".to_string(), "pair#2".to_string()),
        ]
    );
}

/// `--min-face` over the detector's 40 px window once changed nothing:
/// `--min-face 100` still found the 31–54 px faces of a group photo (by
/// SeetaFace's boxes), whose regions are a few pixels wide (cheeks of 9
/// px, which then led `asymmetry`'s list). Now it leaves them out, and
/// keeps the same faces three times as large.
#[test]
fn min_face_leaves_smaller_faces_out() {
    let image = image::open(faces_dir().join("2008_002079.jpg")).unwrap();
    let big = image.resize(
        image.width() * 3,
        image.height() * 3,
        image::imageops::FilterType::Triangle,
    );
    let at = |min_face: u32| FaceFinder::open(&models(), Landmarks::Dlib5, min_face).unwrap();
    let (small, large) = (at(face::DEFAULT_MIN_FACE), at(100));
    let widths = |faces: Vec<face::Face>| -> Vec<u32> {
        faces
            .iter()
            .map(|f| (f.bbox.w / 0.902).round() as u32)
            .collect()
    };
    let found = widths(small.find(&image));
    assert_eq!(found.len(), 6, "{found:?}");
    assert!(found.iter().all(|&w| w < 100), "{found:?}");
    assert_eq!(widths(large.find(&image)), Vec::<u32>::new());
    let tripled = widths(large.find(&big));
    assert_eq!(tripled.len(), found.len(), "{tripled:?}");
    // The window takes faces a little smaller than itself (93 px here).
    assert!(tripled.iter().all(|&w| w >= 90), "{tripled:?}");
}
