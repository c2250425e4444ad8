//! `likeness query`: the k nearest items of query vectors (`--vectors`),
//! stored items (`--id`) or an image (`--image`, embedded by the model the
//! index records, lent by the torch half); `--montage` draws them.
use std::process::ExitCode;
use std::time::Instant;

use likeness_index::postings::SearchOptions;
use likeness_index::{npy, Index, KnnQuery, LabelFilter, LabelName, Neighbours};

use crate::args::QueryArgs;
use crate::embedder::ModelLoader;
use crate::error::{Error, Result};
use crate::query_output::{emit, proc_status_bytes, resident_bytes, FaceRegionGrade, QueryStats};
use crate::read::{decode, ItemImages, Region};

/// The rows to search and what goes with them.
struct Queries {
    data: Vec<f32>,
    /// Columns of `data`.
    dim: usize,
    /// Row `q` leaves item `exclude[q]` out (queries by stored item).
    exclude: Option<Vec<usize>>,
    /// Names of the queries in the table (image queries).
    names: Option<Vec<String>>,
    /// Each query's grade by the model's score read-out (image queries
    /// with a model trained from grades).
    grades: Option<Vec<f32>>,
    /// The query images and their labels, for the montage.
    images: Vec<(image::DynamicImage, Option<i64>)>,
    /// A whole photo's faces, their regions graded (see [`face_grades`]).
    faces: Option<Vec<FaceRegionGrade>>,
}

/// `likeness query`; `models` embeds `--image` (absent in the front binary,
/// which hands image queries to the torch half).
pub fn run(threads: usize, args: QueryArgs, models: Option<&dyn ModelLoader>) -> Result<ExitCode> {
    check_outputs(&args)?;
    let start = Instant::now();
    let index = Index::open(&args.index)?;
    let open_seconds = start.elapsed().as_secs_f64();
    let rss_after_open = proc_status_bytes("VmRSS");
    let mut q = match &args.image {
        Some(_) => image_query(&index, &args, models, start)?,
        None => vector_query(&index, &args)?,
    };
    let filter = label_filter(&index, &args)?;
    let t_search = Instant::now();
    let request = KnnQuery::new(&q.data)
        .dim(q.dim)
        .k(args.k)
        .ef(args.ef)
        .exact(args.exact)
        .filter(filter.as_ref())
        .exclude(q.exclude.as_deref())
        .options(SearchOptions {
            rerank: args.rerank,
            plan: args.plan,
            exact_below: args.exact_below,
        });
    // The one call into the engine: it checks the request (the queries'
    // dimension, the filter against the labels), searches, and its plan
    // says what ran (beam, re-ranking depth) for the report.
    let (found, plan) = index
        .query(&request)
        .map_err(|e| queries_error(e, args.vectors.as_deref()))?;
    let search_seconds = t_search.elapsed().as_secs_f64();
    let store = index.store();
    let stats = QueryStats {
        queries: found.queries(),
        k: args.k,
        ef: plan.ef,
        exact: args.exact,
        store,
        kernels: (store != likeness_index::Store::F32).then(likeness_index::quant::kernel_name),
        rerank: plan.rerank,
        plan: (!args.exact).then_some(plan),
        resident: resident_bytes(&index),
        threads,
        open_seconds,
        search_seconds,
        queries_per_second: found.queries() as f64 / search_seconds.max(1e-9),
        rss_after_open_bytes: rss_after_open,
        peak_rss_bytes: proc_status_bytes("VmHWM"),
        index_bytes: index.manifest().files.values().map(|f| f.size).sum(),
    };
    emit(
        &index,
        &found,
        &stats,
        &args,
        q.names.as_deref(),
        q.grades.as_deref(),
        q.faces.as_deref(),
    )?;
    if let Some(out) = &args.montage {
        montage(&index, &found, &args, &mut q.images, out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The engine's refusal of a request, naming the `--vectors` file when
/// its rows are of another dimension than the index's.
fn queries_error(e: likeness_index::Error, vectors: Option<&std::path::Path>) -> Error {
    match (&e, vectors) {
        (likeness_index::Error::DimensionMismatch { got, .. }, Some(path)) => Error::Usage(
            format!("{} holds vectors of dimension {got}: {e}", path.display()),
        ),
        _ => e.into(),
    }
}

/// The rows of `--vectors` (checked by the engine with the request), or
/// the stored vectors of `--id` (each left out of its own results).
fn vector_query(index: &Index, args: &QueryArgs) -> Result<Queries> {
    let (data, dim, exclude) = if let Some(path) = &args.vectors {
        let queries = npy::read_matrix(path)?;
        (queries.data, queries.dim, None)
    } else {
        let mut data = Vec::with_capacity(args.id.len() * index.dim());
        for &id in &args.id {
            let v = index.item_vector(id).map_err(|e| {
                Error::Usage(format!("--id {id}: {} ({})", e, args.index.display()))
            })?;
            data.extend_from_slice(&v);
        }
        (data, index.dim(), Some(args.id.clone()))
    };
    Ok(Queries {
        data,
        dim,
        exclude,
        names: None,
        grades: None,
        images: Vec::new(),
        faces: None,
    })
}

/// `--image` (cropped to `--region`), embedded by the model the index records.
fn image_query(
    index: &Index,
    args: &QueryArgs,
    models: Option<&dyn ModelLoader>,
    start: Instant,
) -> Result<Queries> {
    let path = args.image.as_deref().unwrap_or(std::path::Path::new(""));
    let models = models.ok_or_else(|| {
        Error::Usage(
            "--image needs the network: run it with `likeness`, which hands it to likeness-torch"
                .into(),
        )
    })?;
    let t_open = start.elapsed().as_secs_f64();
    let model = models.load(index, args.model.as_deref())?;
    let t_model = start.elapsed().as_secs_f64();
    let image = decode::decode_file(path, &args.photos.limits())?;
    let (image, name) = match &args.region {
        Some(r) => {
            let region: Region = r.parse().map_err(|e| {
                Error::Usage(format!("--region {r}: {e} (expected x,y,w,h in pixels)"))
            })?;
            (
                decode::crop(&image, region, path)?,
                format!("{} [{}]", path.display(), r),
            )
        }
        None => (image, path.display().to_string()),
    };
    let graded = model
        .embedder
        .embed_and_grade(&[&image])
        .map_err(Error::Usage)?;
    let faces = match &args.region {
        None => face_grades(&model, &image, path)?,
        Some(_) => None,
    };
    // A photo's own read-out is no grade where the read-out learnt its
    // faces' regions: its faces' regions are graded instead.
    let grades = graded.grades.filter(|_| faces.is_none());
    warn_unlike(&model.dir, grades.as_deref());
    if let Some(f) = &faces {
        warn_faces_unlike(&model.dir, f);
    }
    let data = graded
        .vectors
        .into_iter()
        .next()
        .ok_or_else(|| Error::Invalid("the model returned no vector".into()))?;
    if std::env::var_os("LIKENESS_TIMING").is_some() {
        eprintln!(
            "timing: index open {:.1} ms, model load {:.1} ms, decode+embed {:.1} ms",
            t_open * 1e3,
            (t_model - t_open) * 1e3,
            (start.elapsed().as_secs_f64() - t_model) * 1e3
        );
    }
    let label = match &args.label {
        Some(name) => Some(index.manifest().class_label(name).ok_or_else(|| {
            Error::Usage(format!(
                "--label {name}: the index has no class of that name (it has: {})",
                index.manifest().classes.join(", ")
            ))
        })?),
        None => None,
    };
    Ok(Queries {
        dim: data.len(),
        data,
        exclude: None,
        names: Some(vec![name]),
        grades,
        images: vec![(image, label)],
        faces,
    })
}

/// The faces of a whole photo queried with no `--region`, each region the
/// model's read-out learnt graded ([`crate::face::grade_photo`], the rule
/// `/search/image` follows too). `None` when the model has no read-out of
/// facial regions, or no face is found (the image may be a region's crop,
/// which the read-out grades as it is).
fn face_grades(
    model: &crate::embedder::LoadedModel,
    image: &image::DynamicImage,
    path: &std::path::Path,
) -> Result<Option<Vec<FaceRegionGrade>>> {
    use crate::face::{self, FaceFinder, Landmarks};
    let Some(card) = crate::model_card::ModelSummary::read(&model.dir) else {
        return Ok(None);
    };
    // Asked first, so that a query of any other model loads no face models.
    let Some(labels) = face::graded_face_labels(&card) else {
        return Ok(None);
    };
    let finder = match FaceFinder::open(
        &face::models::default_dir(),
        Landmarks::default(),
        face::DEFAULT_MIN_FACE,
    ) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "note: the read-out learnt {} regions, but faces cannot be found to grade them \
                 ({e}); query a region with --region x,y,w,h",
                labels.join(", ")
            );
            return Ok(None);
        }
    };
    let faces = face::grade_photo(&finder, model.embedder.as_ref(), &card, image, path).map_err(
        |e| match e {
            face::GradeError::Crop(e) => e,
            face::GradeError::Embed(e) => Error::Usage(e),
        },
    )?;
    if faces.is_none() {
        // A photo of dogs, or one whose face the detector missed, was
        // graded whole (-0.12) with only "this crop is unlike the regions
        // it learnt from" to go by.
        eprintln!(
            "note: no face found in {}: graded whole, as one crop of what the read-out learnt \
             ({}); for a photo, query a region of it with --region x,y,w,h (`likeness regions \
             --min-face` finds faces under {} px)",
            path.display(),
            labels.join(", "),
            face::DEFAULT_MIN_FACE
        );
    }
    Ok(faces.map(|faces| {
        faces
            .iter()
            .enumerate()
            .flat_map(|(i, f)| {
                f.regions
                    .iter()
                    .zip(&f.grades)
                    .map(move |(r, &grade)| FaceRegionGrade {
                        face: i + 1,
                        label: r.placed.name.to_string(),
                        side: Some(r.placed.side.as_str()).filter(|s| !s.is_empty()),
                        region: [r.region.x, r.region.y, r.region.w, r.region.h],
                        grade,
                    })
            })
            .collect()
    }))
}

/// A grade far outside the scores the read-out learnt from is no grade
/// (an eye box graded 1.85 on a 0-1 scale): said, as `embed` and
/// `asymmetry` say it.
fn warn_unlike(model_dir: &std::path::Path, grades: Option<&[f32]>) {
    let domain = crate::model_card::ModelSummary::read(model_dir).and_then(|c| c.score_domain);
    let (Some(d), Some(&g)) = (domain, grades.and_then(|g| g.first())) else {
        return;
    };
    if d.outside(g) {
        eprintln!(
            "warning: the grade {g:.3} lies outside the scores the read-out learnt from \
             [{}, {}] by more than {:.0}% of that range: this crop is unlike the regions it \
             learnt from ({}); look at it",
            d.min.unwrap_or(f32::NAN),
            d.max.unwrap_or(f32::NAN),
            crate::model_card::RANGE_SLACK * 100.0,
            d.labels.join(", ")
        );
    }
}

/// The faces' region grades far outside the scores the read-out learnt
/// from: said, as [`warn_unlike`] says it of one crop. The faces of dlib's
/// `bald_guys.jpg` were listed with grades up to 5.68 from a read-out that
/// learnt 1 to 5, with no word, while `--region` on the same box warned.
fn warn_faces_unlike(model_dir: &std::path::Path, faces: &[FaceRegionGrade]) {
    let Some(d) = crate::model_card::ModelSummary::read(model_dir).and_then(|c| c.score_domain)
    else {
        return;
    };
    let graded: Vec<f32> = faces.iter().filter_map(|f| f.grade).collect();
    let outside: Vec<f32> = graded.iter().copied().filter(|&g| d.outside(g)).collect();
    if outside.is_empty() {
        return;
    }
    eprintln!(
        "warning: {} of the {} region grades below lie outside the scores the read-out learnt \
         from [{}, {}] by more than {:.0}% of that range (lowest {:.3}, highest {:.3}): those \
         regions are unlike the ones it learnt from ({}); look at them (each line's --region)",
        outside.len(),
        graded.len(),
        d.min.unwrap_or(f32::NAN),
        d.max.unwrap_or(f32::NAN),
        crate::model_card::RANGE_SLACK * 100.0,
        outside.iter().copied().fold(f32::INFINITY, f32::min),
        outside.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        d.labels.join(", ")
    );
}

/// The label filter of `--labels`/`--exclude-labels`: integers, or class
/// names of the index (an unknown name is an error naming the known ones).
fn label_filter(index: &Index, args: &QueryArgs) -> Result<Option<LabelFilter>> {
    let m = index.manifest();
    let parse = |names: &[String]| -> Result<Vec<i64>> {
        names
            .iter()
            .map(|n| Ok(m.filter_label(&LabelName::parse(n))?))
            .collect()
    };
    // Whether the index has labels to filter by is the engine's check of
    // the request.
    let f = match (args.labels.is_empty(), args.exclude_labels.is_empty()) {
        (true, true) => return Ok(None),
        (false, _) => LabelFilter::only(parse(&args.labels)?),
        (true, false) => LabelFilter::except(parse(&args.exclude_labels)?),
    };
    Ok(Some(f))
}

/// What `--out` and `--montage` would write, checked before any work: a
/// folder that exists, never a query's own input file (`--out q.npy` over
/// `--vectors q.npy` once replaced the queries with their answers), and a
/// montage only of queries it can draw.
fn check_outputs(args: &QueryArgs) -> Result<()> {
    if args.image.is_none() {
        // (clap's `requires` does not fire within the required group.)
        for (flag, given) in [
            ("--region", args.region.is_some()),
            ("--label", args.label.is_some()),
            ("--model", args.model.is_some()),
        ] {
            if given {
                return Err(Error::Usage(format!(
                    "{flag} belongs to a query by --image; drop it (--vectors and --id \
                     search with stored vectors)"
                )));
            }
        }
    }
    if args.montage.is_some() && args.vectors.is_some() {
        return Err(Error::Usage(
            "--montage draws queries by --image or --id, not --vectors: drop one".into(),
        ));
    }
    let inputs: Vec<&std::path::Path> = args
        .vectors
        .iter()
        .chain(&args.image)
        .map(|p| p.as_path())
        .collect();
    for (flag, out) in [("--out", &args.out), ("--montage", &args.montage)] {
        let Some(out) = out else { continue };
        let real = |p: &std::path::Path| std::fs::canonicalize(p).ok();
        if let Some(input) = inputs
            .iter()
            .find(|i| real(out).is_some() && real(i) == real(out))
        {
            return Err(Error::Usage(format!(
                "{flag} {} is the query's own input {}: write the results elsewhere",
                out.display(),
                input.display()
            )));
        }
        let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = parent.filter(|d| !d.is_dir()) {
            return Err(Error::Usage(format!(
                "{flag} {}: the folder {} does not exist; create it first",
                out.display(),
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Each query beside its results (`--montage`): queries by `--image` or `--id`.
fn montage(
    index: &Index,
    found: &Neighbours,
    args: &QueryArgs,
    images: &mut Vec<(image::DynamicImage, Option<i64>)>,
    out: &std::path::Path,
) -> Result<()> {
    let items = index.items()?;
    let labels = index.labels();
    let mut loader = ItemImages::new(args.photos.limits());
    if images.is_empty() {
        for &id in args.id.iter().take(found.queries()) {
            let img = loader.load(items.get(id))?;
            images.push((img, labels.and_then(|l| l.get(id).copied())));
        }
    }
    if images.len() != found.queries() {
        return Err(Error::Usage(
            "--montage draws queries by --image or --id (not --vectors)".into(),
        ));
    }
    crate::montage::draw(out, index, &items, found, images, &mut loader)?;
    eprintln!("montage: {}", out.display());
    Ok(())
}
