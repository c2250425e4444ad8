//! `likeness regions`: photographs in, a manifest of facial regions out.
//!
//! Each photo is decoded, its faces found and their landmarks placed
//! (`likeness_app::face`), and every region of every face becomes a row
//! that `index`, `embed`, `eval` and `asymmetry` read as any manifest. A
//! photo with no face is counted and listed at the end, not an error.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use image::DynamicImage;
use likeness_app::args::RegionsArgs;
use likeness_app::face::{self, models, Face, FaceFinder, Landmarks, RegionBox};
use likeness_app::read::decode::decode_file;
use rayon::prelude::*;

use crate::data::folder::{is_image_file, LeftOut};
use crate::data::manifest::REGION_EXTRAS;
use crate::data::{Dataset, DecodeLimits};
use crate::error::{Error, Result};
use likeness_app::plural::plural;

/// The manifest's columns every reader uses; [`REGION_EXTRAS`] follow.
const HEADER: [&str; 8] = ["path", "label", "x", "y", "w", "h", "subject", "side"];

/// A photo to look at, and whose face it is.
#[derive(Debug, Clone)]
pub struct Photo {
    pub path: PathBuf,
    /// The class folder's (or manifest label's) name, else the file's stem.
    pub subject: String,
}

/// What one photo gave.
pub struct Found {
    pub photo: Photo,
    pub faces: Vec<Face>,
    pub boxes: Vec<Vec<RegionBox>>,
    /// With `--chips`: each face's index and chip file.
    pub chips: Vec<(usize, PathBuf)>,
}

/// The photos of a source: one image, a manifest's distinct images (the
/// label is the subject), or a folder's images and its class folders' images.
pub fn list_photos(src: &Path, exclude: &[&Path]) -> Result<Vec<Photo>> {
    let stem = |p: &Path| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let meta = std::fs::metadata(src).map_err(|e| Error::io(src, e))?;
    if meta.is_file() && is_image_file(src) {
        if src.to_str().is_none() {
            return Err(Error::Invalid(format!(
                "{}: the path is not UTF-8 text, which a manifest cannot name; rename it in \
                 UTF-8 (e.g. `convmv -f latin1 -t utf8 --notest FILE`)",
                src.display()
            )));
        }
        return Ok(vec![Photo {
            path: src.to_path_buf(),
            subject: stem(src),
        }]);
    }
    if meta.is_file() && crate::data::folder::is_unread_photo(src) {
        return Err(Error::Invalid(format!(
            "{}: a photo format not read here (likeness reads jpeg, png, bmp and webp); \
             convert it to JPEG or PNG",
            src.display()
        )));
    }
    let mut photos = Vec::new();
    if meta.is_file() {
        let ds = Dataset::open(src)?;
        let mut seen = std::collections::HashSet::new();
        for item in ds.items() {
            if seen.insert(item.path.clone()) {
                photos.push(Photo {
                    path: item.path.clone(),
                    subject: ds.classes()[item.label].clone(),
                });
            }
        }
        return Ok(photos);
    }
    let sorted = |dir: &Path| -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        v.sort();
        Ok(v)
    };
    // What this command writes (overlays, chips) may lie inside the folder
    // it reads: a second run would take those pictures for photos.
    let real = |p: &Path| std::fs::canonicalize(p).ok();
    let written: Vec<PathBuf> = exclude.iter().filter_map(|p| real(p)).collect();
    // Photos loose at the top are read too (each its own subject).
    let mut left = LeftOut::default();
    let mut take = |p: PathBuf, subject: String, photos: &mut Vec<Photo>| {
        if p.is_file() && is_image_file(&p) && p.to_str().is_none() {
            left.not_utf8.push(p);
        } else if p.is_file() && is_image_file(&p) {
            photos.push(Photo { path: p, subject });
        } else {
            left.take(p);
        }
    };
    for p in sorted(src)? {
        if p.is_dir() {
            if real(&p).is_some_and(|r| written.contains(&r)) {
                continue;
            }
            let subject = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for q in sorted(&p)? {
                take(q, subject.clone(), &mut photos);
            }
        } else {
            let subject = stem(&p);
            take(p, subject, &mut photos);
        }
    }
    left.note(src);
    if photos.is_empty() {
        return Err(Error::EmptyDataset {
            path: src.to_path_buf(),
            hint: "no photos (jpg, jpeg, png, bmp, webp) in it or in its folders".into(),
        });
    }
    Ok(photos)
}

/// The faces and regions of one decoded photo.
fn find(
    finder: &FaceFinder,
    image: &DynamicImage,
    wanted: &[String],
) -> (Vec<Face>, Vec<Vec<RegionBox>>) {
    let faces = finder.find(image);
    let boxes = face::region_boxes(&faces, wanted, image.width(), image.height());
    (faces, boxes)
}

/// The regions of every photo, in parallel, in order. `Err` entries are
/// photos that could not be read.
pub fn find_all(
    finder: &FaceFinder,
    photos: &[Photo],
    wanted: &[String],
    overlay: Option<&Path>,
    chips: Option<&Path>,
    limits: &DecodeLimits,
) -> Vec<std::result::Result<Found, Box<(Photo, Error)>>> {
    let bar = likeness_app::progress::bar(photos.len() as u64, "photos");
    let out = photos
        .par_iter()
        .enumerate()
        .map(|(i, photo)| {
            let run = || -> Result<Found> {
                let image = decode_file(&photo.path, limits)?;
                let (faces, boxes) = find(finder, &image, wanted);
                let stem = photo.path.file_stem().unwrap_or_default().to_string_lossy();
                // The RGB copy that chips are cut from and overlays drawn on.
                let rgb = (chips.is_some() || overlay.is_some()).then(|| image.to_rgb8());
                let mut chip_files = Vec::new();
                if let (Some(dir), Some(rgb)) = (chips, &rgb) {
                    for (k, f) in faces.iter().enumerate() {
                        let Some(chip) = face::chip::cut(rgb, f) else {
                            continue;
                        };
                        let path = dir.join(format!("{i:05}-{stem}-{}.png", k + 1));
                        likeness_app::plot::write_png(
                            &path,
                            chip.as_raw(),
                            chip.width(),
                            chip.height(),
                        )?;
                        chip_files.push((k, path));
                    }
                }
                if let (Some(dir), Some(mut rgb)) = (overlay, rgb) {
                    face::overlay::draw(&mut rgb, &faces, &boxes);
                    let name = format!("{i:05}-{stem}.png");
                    likeness_app::plot::write_png(
                        &dir.join(name),
                        rgb.as_raw(),
                        rgb.width(),
                        rgb.height(),
                    )?;
                }
                Ok(Found {
                    photo: photo.clone(),
                    faces,
                    boxes,
                    chips: chip_files,
                })
            };
            let r = run().map_err(|e| Box::new((photo.clone(), e)));
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();
    out
}

/// Whose the photo's `k`-th face is (largest first, from 0): the photo's
/// person for its largest face, `person#k` (k from 2) for the others, who
/// are someone else. The manifest's `subject` and chips.csv's `label` both
/// come from here, so a face is one person in both.
pub fn face_subject(found: &Found, k: usize) -> String {
    match k {
        0 => found.photo.subject.clone(),
        k => format!("{}#{}", found.photo.subject, k + 1),
    }
}

/// Writes the manifest (atomically) and returns how many rows it holds.
pub fn write_manifest(path: &Path, found: &[Found]) -> Result<usize> {
    let mut rows = 0;
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.write_record(HEADER.iter().chain(&REGION_EXTRAS))
        .map_err(|e| Error::Invalid(e.to_string()))?;
    for (n, f) in found.iter().enumerate() {
        let abs = std::path::absolute(&f.photo.path).unwrap_or_else(|_| f.photo.path.clone());
        for (k, boxes) in f.boxes.iter().enumerate() {
            let subject = face_subject(f, k);
            for b in boxes {
                let r = b.region;
                let [along, across] = b.placed.size();
                w.write_record([
                    abs.to_string_lossy().as_ref(),
                    b.placed.name,
                    &r.x.to_string(),
                    &r.y.to_string(),
                    &r.w.to_string(),
                    &r.h.to_string(),
                    &subject,
                    b.placed.side.as_str(),
                    &format!("{n}#{}", k + 1),
                    &format!("{:.2}", b.placed.angle),
                    &format!("{along:.1}"),
                    &format!("{across:.1}"),
                ])
                .map_err(|e| Error::Invalid(e.to_string()))?;
                rows += 1;
            }
        }
    }
    let bytes = w.into_inner().map_err(|e| Error::Invalid(e.to_string()))?;
    likeness_index::atomic_write(path, |file| file.write_all(&bytes))?;
    Ok(rows)
}

/// Writes `dir/chips.csv`: each chip and its label, the photo's person for
/// its largest face (the faces come largest first) and person#k for the
/// others, who are someone else. Returns how many chips it lists, and how
/// many labels hold two or more (what `train` can learn from).
fn write_chips(dir: &Path, found: &[Found]) -> Result<(usize, usize)> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["path", "label"])
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let mut per_label = std::collections::HashMap::<String, usize>::new();
    for f in found {
        for (k, path) in &f.chips {
            let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            let label = face_subject(f, *k);
            w.write_record([abs.to_string_lossy().as_ref(), &label])
                .map_err(|e| Error::Invalid(e.to_string()))?;
            *per_label.entry(label).or_default() += 1;
        }
    }
    let bytes = w.into_inner().map_err(|e| Error::Invalid(e.to_string()))?;
    likeness_index::atomic_write(&dir.join("chips.csv"), |file| file.write_all(&bytes))?;
    let chips = per_label.values().sum();
    Ok((chips, per_label.values().filter(|&&c| c >= 2).count()))
}

/// Writes `path,face,point,x,y` for every landmark.
fn write_landmarks(path: &Path, found: &[Found]) -> Result<()> {
    let mut text = String::from("path,face,point,x,y\n");
    for (n, f) in found.iter().enumerate() {
        let abs = std::path::absolute(&f.photo.path).unwrap_or_else(|_| f.photo.path.clone());
        let quoted = format!("\"{}\"", abs.to_string_lossy().replace('"', "\"\""));
        for (k, face) in f.faces.iter().enumerate() {
            for (i, p) in face.points.iter().enumerate() {
                text += &format!("{quoted},{n}#{},{i},{:.2},{:.2}\n", k + 1, p[0], p[1]);
            }
        }
    }
    likeness_index::atomic_write(path, |file| file.write_all(text.as_bytes()))?;
    Ok(())
}

/// Opens the models, printing the 68-point model's licence notice.
pub fn open_finder(
    models_dir: Option<&Path>,
    landmarks: Landmarks,
    min_face: u32,
) -> Result<FaceFinder> {
    if landmarks == Landmarks::Dlib68 {
        eprintln!("{}", models::DLIB68_NOTICE);
    }
    let dir = models_dir.map_or_else(models::default_dir, Path::to_path_buf);
    Ok(FaceFinder::open(&dir, landmarks, min_face)?)
}

/// Finds the regions of every photo of `src`; unreadable photos stop the
/// run unless `skip_bad`. Prints what had no face.
pub fn regions_of(
    finder: &FaceFinder,
    src: &Path,
    wanted: &[String],
    overlay: Option<&Path>,
    chips: Option<&Path>,
    skip_bad: bool,
    limits: &DecodeLimits,
) -> Result<Vec<Found>> {
    let written: Vec<&Path> = overlay.into_iter().chain(chips).collect();
    let photos = list_photos(src, &written)?;
    let mut found = Vec::with_capacity(photos.len());
    let mut bad = Vec::new();
    for r in find_all(finder, &photos, wanted, overlay, chips, limits) {
        match r {
            Ok(f) => found.push(f),
            Err(b) if skip_bad => bad.push(*b),
            Err(b) => {
                let e = b.1;
                return Err(Error::Invalid(format!(
                    "{e}\n(pass --skip-bad to skip unreadable photos and list them at the end)"
                )));
            }
        }
    }
    let faces: usize = found.iter().map(|f| f.faces.len()).sum();
    let none: Vec<&Found> = found.iter().filter(|f| f.faces.is_empty()).collect();
    eprintln!(
        "{}, {} ({} landmarks, min face {} px)",
        plural(photos.len(), "photo"),
        plural(faces, "face"),
        finder.landmarks().as_str(),
        finder.min_face()
    );
    if !none.is_empty() {
        let names: Vec<String> = none
            .iter()
            .take(10)
            .map(|f| f.photo.path.display().to_string())
            .collect();
        let more = if none.len() > 10 {
            format!(" and {} more", none.len() - 10)
        } else {
            String::new()
        };
        eprintln!(
            "{} with no face found (`likeness regions --min-face` finds smaller faces): {}{more}",
            plural(none.len(), "photo"),
            names.join(", ")
        );
    }
    if !bad.is_empty() {
        eprintln!("{} skipped as unreadable:", plural(bad.len(), "photo"));
        // Each error names its photo.
        for (_, e) in &bad {
            eprintln!("  {e}");
        }
    }
    Ok(found)
}

pub fn run(args: RegionsArgs) -> Result<ExitCode> {
    let wanted = match &args.regions {
        Some(list) => face::parse_region_list(list)?,
        None => Vec::new(),
    };
    if args.out.exists() && !args.force {
        return Err(Error::Invalid(format!(
            "{} exists; pass --force to replace it",
            args.out.display()
        )));
    }
    if args.chips.is_some() && args.landmarks != Landmarks::Dlib5 {
        return Err(Error::Invalid(
            "--chips aligns faces by the 5-point model's landmarks; drop --landmarks dlib68".into(),
        ));
    }
    for dir in args.overlay.iter().chain(&args.chips) {
        crate::error::create_dir(dir)?;
    }
    // The files' folders are made before the photos are read, as other
    // commands make their --out, so that a new folder works and a bad one
    // fails before the detection rather than after it.
    for file in std::iter::once(&args.out).chain(args.landmarks_out.as_ref()) {
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::error::create_dir(dir)?;
        }
    }
    let finder = open_finder(args.models.as_deref(), args.landmarks, args.min_face)?;
    let start = std::time::Instant::now();
    let found = regions_of(
        &finder,
        &args.data,
        &wanted,
        args.overlay.as_deref(),
        args.chips.as_deref(),
        args.skip_bad,
        &args.photos.limits(),
    )?;
    let rows = write_manifest(&args.out, &found)?;
    let chips = match &args.chips {
        Some(dir) => Some((dir, write_chips(dir, &found)?)),
        None => None,
    };
    if let Some(path) = &args.landmarks_out {
        write_landmarks(path, &found)?;
    }
    let faces: usize = found.iter().map(|f| f.faces.len()).sum();
    let secs = start.elapsed().as_secs_f64();
    likeness_app::outln!(
        "{}: {} of {} in {} ({:.1} faces/s)",
        args.out.display(),
        plural(rows, "region"),
        plural(faces, "face"),
        plural(found.len(), "photo"),
        faces as f64 / secs.max(1e-9)
    )?;
    if let Some(dir) = &args.overlay {
        likeness_app::outln!("overlays: {}", dir.display())?;
    }
    if faces == 0 {
        // A folder with no face once ended on "0 aligned face chips in
        // chips, listed in chips/chips.csv (`likeness train --data` it)".
        eprintln!(
            "no face found in {}: {} holds only its header; try --min-face \
             (smaller faces), or photos where the face is upright and unobstructed",
            match found.len() {
                1 => "the one photo".to_string(),
                n => format!("any of the {n} photos"),
            },
            args.out.display()
        );
    }
    if let Some((dir, (n, people))) = chips.filter(|_| faces > 0) {
        likeness_app::outln!(
            "{} in {}, listed in {} (`likeness train --data` it)",
            plural(n, "aligned face chip"),
            dir.display(),
            dir.join("chips.csv").display()
        )?;
        if people < 2 && n > 0 {
            // A flat folder names each photo after itself: one chip a label.
            eprintln!(
                "note: {} in {} {} two chips or more, and `train` needs at least \
                 two people with two each; the label is the photo's folder (its file name when \
                 the photos are not in one folder a person): put each person's photos in a \
                 folder of their own, or write the label column of chips.csv yourself",
                plural(people, "label"),
                dir.join("chips.csv").display(),
                if people == 1 { "holds" } else { "hold" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
