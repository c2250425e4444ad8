//! The commands that join a trained model and an index: `embed`, `index`,
//! image queries (`query --image`, `--montage`) and `eval`.
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use likeness_index::cli::{MetricArg, QueryArgs};
use likeness_index::{Index, IndexBuilder, ItemInfo, Metric};
use tch::Device;

use crate::data::{decode, Dataset, Region};
use crate::error::{Error, Result};
use crate::gallery::{self, EmbedOptions};
use crate::model::Net;
use crate::train::output::ModelCard;

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Trained model directory (model.json + weights.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// Images to encode: an image folder, a CSV manifest (with optional
    /// regions) or an IDX file.
    #[arg(long)]
    pub data: PathBuf,
    /// Output directory: vectors.npy, labels.npy, items.csv, embed.json.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub run: EmbedRunArgs,
}

/// Options shared by `embed` and `index`.
#[derive(Debug, Args)]
pub struct EmbedRunArgs {
    /// Images per forward pass.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Skip images that cannot be used and list them in skipped.csv; without
    /// it the first bad image stops the run with its path.
    #[arg(long)]
    pub skip_bad: bool,
    /// Replace an existing output directory (only one this command made).
    #[arg(long)]
    pub force: bool,
    /// Batches decoded ahead of the forward pass (0: decode, then forward)
    /// [default: 0 on the CPU, measured faster on 2 cores; 2 on CUDA, where
    /// decoding on the CPU overlaps the GPU's forward pass; see src/gallery.rs].
    #[arg(long, hide = true)]
    pub prefetch: Option<usize>,
}

impl EmbedRunArgs {
    fn options(&self, device: Device) -> Result<EmbedOptions> {
        if self.batch == 0 {
            return Err(Error::Invalid("--batch must be at least 1".into()));
        }
        let prefetch_default = if device.is_cuda() {
            gallery::CUDA_PREFETCH
        } else {
            0
        };
        Ok(EmbedOptions {
            batch: self.batch,
            prefetch: self.prefetch.unwrap_or(prefetch_default),
            skip_bad: self.skip_bad,
        })
    }
}

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Trained model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Gallery images: folder, CSV manifest (with optional regions) or IDX file.
    #[arg(long)]
    pub data: PathBuf,
    /// Output index directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Distance: cosine (default) or l2.
    #[arg(long, value_enum, default_value_t = MetricArg::Cosine)]
    pub metric: MetricArg,
    /// HNSW links per node (layer 0 keeps 2·M).
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// HNSW beam width while building.
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
    #[command(flatten)]
    pub run: EmbedRunArgs,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("protocol").args(["queries", "leave_one_out"])))]
pub struct EvalArgs {
    /// Index directory with labels (made by `likeness index`).
    #[arg(long)]
    pub index: PathBuf,
    /// Labelled query images (query vs gallery); class names must match the index's.
    #[arg(long)]
    pub queries: Option<PathBuf>,
    /// Every indexed item queries all the others (the default).
    #[arg(long)]
    pub leave_one_out: bool,
    /// The K of Recall@K.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub ks: Vec<usize>,
    /// Beam width for the ANN agreement check (raised to the largest K if smaller).
    #[arg(long, default_value_t = 64)]
    pub ef: usize,
    /// Model directory for --queries [default: the one recorded in the index].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Where eval.json and eval.png go [default: INDEX_DIR-eval beside the index].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Images per forward pass when embedding --queries.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
}

fn load_model(dir: &Path, device: Device) -> Result<(Net, ModelCard)> {
    crate::model::load(dir, device)
}

/// `likeness embed`.
pub fn embed(device: Device, args: EmbedArgs) -> Result<ExitCode> {
    let opts = args.run.options(device)?;
    gallery::check_output(&args.out, args.run.force, "embed.json")?;
    let (net, card) = load_model(&args.model, device)?;
    let ds = Dataset::open(&args.data)?;
    let bar = crate::progress::bar(ds.len() as u64, "embedding");
    let res = gallery::embed_to_dir(
        &net,
        &card,
        &args.model,
        &ds,
        &args.out,
        &opts,
        args.run.force,
        Some(&bar),
    );
    bar.finish_and_clear();
    let (card, stats) = res?;
    report_embed(&stats, &net, card.count, &args.out);
    Ok(ExitCode::SUCCESS)
}

fn report_embed(stats: &gallery::EmbedStats, net: &Net, count: usize, out: &Path) {
    if stats.converted > 0 {
        eprintln!(
            "likeness: converted {} images to {} (the model expects {} channel{})",
            stats.converted,
            if net.spec.channels == 1 {
                "greyscale"
            } else {
                "RGB"
            },
            net.spec.channels,
            if net.spec.channels == 1 { "" } else { "s" }
        );
    }
    if !stats.skipped.is_empty() {
        eprintln!(
            "likeness: skipped {} unusable images (listed in {})",
            stats.skipped.len(),
            out.join("skipped.csv").display()
        );
    }
    println!(
        "embedded {count} images of dimension {} in {:.2}s ({:.0} images/s) into {}",
        net.spec.dim,
        stats.seconds,
        stats.images_per_second(),
        out.display()
    );
}

/// `likeness index`: embed a gallery and build its index in one step.
pub fn index(device: Device, threads: usize, args: IndexArgs) -> Result<ExitCode> {
    let opts = args.run.options(device)?;
    gallery::check_output(
        &args.out,
        args.run.force,
        likeness_index::manifest::MANIFEST,
    )?;
    let (net, card) = load_model(&args.model, device)?;
    let ds = Dataset::open(&args.data)?;
    if ds.is_empty() {
        return Err(Error::EmptyDataset {
            path: ds.root().to_path_buf(),
            hint: "the gallery has no images to index".into(),
        });
    }
    // The graph's parameters are checked before the (long) embedding.
    let model_dir = std::fs::canonicalize(&args.model).unwrap_or_else(|_| args.model.clone());
    let builder = IndexBuilder::new()
        .metric(args.metric.into())
        .m(args.m)
        .ef_construction(args.ef_construction)
        .threads(threads)
        .overwrite(args.run.force)
        .model_fingerprint(card.weights_crc32.clone())
        .model_dir(model_dir.display().to_string())
        .classes(ds.classes().to_vec());
    builder.validate()?;
    let dim = net.spec.dim as usize;
    let mut vectors = Vec::with_capacity(ds.len() * dim);
    let mut labels = Vec::with_capacity(ds.len());
    let mut items: Vec<ItemInfo> = Vec::with_capacity(ds.len());
    let all: Vec<usize> = (0..ds.len()).collect();
    let bar = crate::progress::bar(ds.len() as u64, "embedding");
    let res = gallery::embed_stream(&net, &ds, &all, &opts, Some(&bar), |emb, kept| {
        vectors.extend_from_slice(emb);
        for &i in kept {
            labels.push(ds.items()[i].label as i64);
            items.push(gallery::item_info(&ds, i));
        }
        Ok(())
    });
    bar.finish_and_clear();
    let stats = res?;
    report_embed(&stats, &net, stats.embedded, &args.out);
    if stats.embedded == 0 {
        return Err(Error::Invalid(format!(
            "none of the {} images of {} could be used",
            ds.len(),
            ds.root().display()
        )));
    }
    let bar = crate::progress::bar(labels.len() as u64, "indexing");
    let progress = |done: usize, _total: usize| bar.set_position(done as u64);
    let res = builder.build(
        &vectors,
        dim,
        Some(&labels),
        Some(&items),
        &args.out,
        Some(&progress),
    );
    bar.finish_and_clear();
    let report = res?;
    if !stats.skipped.is_empty() {
        // The index directory only holds what its manifest lists, so the
        // list of skipped images goes beside it.
        let p = skipped_path(&args.out);
        gallery::write_skipped(&p, &stats.skipped)?;
        eprintln!("likeness: skipped images listed in {}", p.display());
    }
    println!(
        "indexed {} items ({}, M={}, ef_construction={}) in {:.2}s; {:.1} MB in {}",
        report.count,
        Metric::from(args.metric),
        args.m,
        args.ef_construction,
        report.total_seconds,
        report.bytes as f64 / 1e6,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn skipped_path(index_dir: &Path) -> PathBuf {
    let mut name = index_dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "index".into());
    name.push(".skipped.csv");
    index_dir.with_file_name(name)
}

/// The model an index was built with: `explicit` or the recorded directory,
/// refused when its fingerprint differs from the index's.
fn model_for_index(
    index: &Index,
    explicit: Option<&Path>,
    device: Device,
) -> Result<(Net, ModelCard, PathBuf)> {
    let m = index.manifest();
    let dir = match (explicit, &m.model_dir) {
        (Some(d), _) => d.to_path_buf(),
        (None, Some(d)) => PathBuf::from(d),
        (None, None) => {
            return Err(Error::Invalid(format!(
            "{} records no model (it was built from vectors); image queries need an index made by \
                 `likeness index`, or pass --model",
            index.dir().display()
        )))
        }
    };
    let (net, card) = load_model(&dir, device).map_err(|e| {
        Error::Invalid(format!(
            "cannot load the model of index {} from {}: {e}",
            index.dir().display(),
            dir.display()
        ))
    })?;
    if let Some(fp) = &m.model_fingerprint {
        if *fp != card.weights_crc32 {
            return Err(Error::Invalid(format!(
                "model mismatch: {} has fingerprint {} but the index {} was built by a model with \
                 fingerprint {fp}; query with the model that built the index (or rebuild the index \
                 with `likeness index --model {}`)",
                dir.display(),
                card.weights_crc32,
                index.dir().display(),
                dir.display()
            )));
        }
    }
    if net.spec.dim as usize != index.dim() {
        return Err(Error::Invalid(format!(
            "the model {} makes vectors of dimension {} but the index has dimension {}",
            dir.display(),
            net.spec.dim,
            index.dim()
        )));
    }
    Ok((net, card, dir))
}

fn parse_region(s: &str) -> Result<Region> {
    s.parse::<Region>()
        .map_err(|e| Error::Invalid(format!("--region {s}: {e} (expected x,y,w,h in pixels)")))
}

/// `likeness query` with `--image` or `--montage`.
pub fn query(device: Device, threads: usize, args: QueryArgs) -> Result<ExitCode> {
    let start = Instant::now();
    let index = Index::open(&args.index)?;
    let open_seconds = start.elapsed().as_secs_f64();
    let rss = likeness_index::cli::proc_status_bytes("VmRSS");
    let mut query_images = Vec::new();
    let (data, dim, exclude, names) = if let Some(path) = &args.image {
        let (net, _card, _dir) = model_for_index(&index, args.model.as_deref(), device)?;
        let t_model = start.elapsed().as_secs_f64();
        let image = decode::decode_file(path, &decode::DecodeLimits::default())?;
        let (image, name) = match &args.region {
            Some(r) => {
                let region = parse_region(r)?;
                (
                    decode::crop(image, region, path)?,
                    format!("{} [{}]", path.display(), r),
                )
            }
            None => (image, path.display().to_string()),
        };
        let input = crate::transform::batch_input(&[&image], &net.spec, None, &[]);
        let v = crate::embed::embed_tensor(&net, &input, 1, net.vs.device())?;
        if std::env::var_os("LIKENESS_TIMING").is_some() {
            eprintln!(
                "timing: index open {:.1} ms, model load {:.1} ms, decode+embed {:.1} ms",
                open_seconds * 1e3,
                (t_model - open_seconds) * 1e3,
                (start.elapsed().as_secs_f64() - t_model) * 1e3
            );
        }
        let qlabel = match &args.label {
            Some(name) => Some(
                index
                    .manifest()
                    .classes
                    .iter()
                    .position(|c| c == name)
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "--label {name}: the index has no class of that name (it has: {})",
                            index.manifest().classes.join(", ")
                        ))
                    })? as i64,
            ),
            None => None,
        };
        query_images.push((image, qlabel));
        (v, index.dim(), None, Some(vec![name]))
    } else {
        let (data, dim, exclude) = likeness_index::cli::query_vectors(&index, &args)?;
        (data, dim, exclude, None)
    };
    let (found, stats) = likeness_index::cli::search(
        &index,
        &data,
        dim,
        exclude.as_deref(),
        &args,
        threads,
        open_seconds,
        rss,
    )?;
    likeness_index::cli::emit(&index, &found, &stats, &args, names.as_deref())?;
    if let Some(out) = &args.montage {
        let items = index.items()?;
        let labels = index.labels();
        let mut loader = ItemImages::default();
        if query_images.is_empty() {
            for &id in args.id.iter().take(found.queries()) {
                let img = loader.load(items.get(id))?;
                query_images.push((img, labels.and_then(|l| l.get(id).copied())));
            }
        }
        if query_images.len() != found.queries() {
            return Err(Error::Invalid(
                "--montage draws queries by --image or --id (not --vectors)".into(),
            ));
        }
        crate::montage::draw(out, &index, &items, &found, &query_images, &mut loader)?;
        eprintln!("montage: {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Decodes indexed items' images (IDX rows for `path#row` sources, with
/// each IDX file read once) and crops their regions.
#[derive(Default)]
pub struct ItemImages {
    idx: std::collections::HashMap<PathBuf, crate::data::idx::IdxImages>,
}

impl ItemImages {
    pub fn load(&mut self, info: Option<&ItemInfo>) -> Result<image::DynamicImage> {
        let info = info.ok_or_else(|| Error::Invalid("item out of range".into()))?;
        if info.source.is_empty() {
            return Err(Error::Invalid(
                "the index records no source images (built from vectors); --montage needs an index \
                 made by `likeness index`"
                    .into(),
            ));
        }
        let (path, row) = match info.source.rsplit_once('#') {
            Some((p, r)) if !r.is_empty() && r.chars().all(|c| c.is_ascii_digit()) => {
                (PathBuf::from(p), r.parse::<usize>().ok())
            }
            _ => (PathBuf::from(&info.source), None),
        };
        let image = match row {
            Some(row) => {
                if !self.idx.contains_key(&path) {
                    let images = crate::data::idx::read_images(&path)?;
                    self.idx.insert(path.clone(), images);
                }
                self.idx[&path].image(row)?
            }
            None => decode::decode_file(&path, &decode::DecodeLimits::default())?,
        };
        match gallery::info_region(info) {
            Some(r) => decode::crop(image, r, &path),
            None => Ok(image),
        }
    }
}

/// What `likeness eval` measured (`eval.json`); computed by the index crate,
/// which the Python package calls too.
pub use likeness_index::eval::EvalReport;

/// `likeness eval`.
pub fn eval(device: Device, args: EvalArgs) -> Result<ExitCode> {
    let start = Instant::now();
    if args.ks.is_empty() || args.ks.contains(&0) {
        return Err(Error::Invalid(
            "--ks must list positive K values, e.g. 1,2,4,8".into(),
        ));
    }
    if args.batch == 0 {
        return Err(Error::Invalid("--batch must be at least 1".into()));
    }
    let index = Index::open(&args.index)?;
    // Checked here too, before a model is loaded and queries embedded.
    if index.labels().is_none() {
        return Err(Error::Invalid(format!(
            "{} has no labels; evaluation needs an index built with labels (`likeness index`, or `build --labels`)",
            args.index.display()
        )));
    }
    let classes = index.manifest().classes.clone();
    let mut report = match &args.queries {
        None => likeness_index::eval::evaluate_index(&index, None, &args.ks, args.ef)?,
        Some(src) => {
            let (net, _card, _dir) = model_for_index(&index, args.model.as_deref(), device)?;
            let ds = Dataset::open(src)?;
            if ds.is_empty() {
                return Err(Error::EmptyDataset {
                    path: ds.root().to_path_buf(),
                    hint: "no query images".into(),
                });
            }
            // Map the query classes onto the index's labels by name.
            let map: Vec<i64> = ds
                .classes()
                .iter()
                .map(|c| {
                    classes
                        .iter()
                        .position(|x| x == c)
                        .map_or(-1 - 1_000_000, |p| p as i64)
                })
                .collect();
            let all: Vec<usize> = (0..ds.len()).collect();
            let mut q = Vec::new();
            let mut ql = Vec::new();
            let bar = crate::progress::bar(ds.len() as u64, "embedding");
            let opts = EmbedOptions {
                batch: args.batch,
                ..EmbedOptions::default()
            };
            let res = gallery::embed_stream(&net, &ds, &all, &opts, Some(&bar), |emb, kept| {
                q.extend_from_slice(emb);
                ql.extend(kept.iter().map(|&i| map[ds.items()[i].label]));
                Ok(())
            });
            bar.finish_and_clear();
            res?;
            likeness_index::eval::evaluate_index(&index, Some((&q, &ql)), &args.ks, args.ef)?
        }
    };
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
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let json = serde_json::to_vec_pretty(&report).map_err(|e| Error::Invalid(e.to_string()))?;
    likeness_index::atomic_write(&out.join("eval.json"), |f| {
        use std::io::Write;
        f.write_all(&json)
    })?;
    crate::plot::eval_bars(&out.join("eval.png"), &report)?;
    if args.json {
        let line = serde_json::to_string(&report).map_err(|e| Error::Invalid(e.to_string()))?;
        println!("{line}");
    } else {
        println!("{}", render_eval(&report));
        eprintln!(
            "wrote {} and {}",
            out.join("eval.json").display(),
            out.join("eval.png").display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn render_eval(r: &EvalReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {} queries, gallery {}, {}{}",
        r.index,
        r.queries,
        r.gallery,
        r.protocol,
        if r.lone_queries > 0 {
            format!(
                " ({} queries without another item of their label left out)",
                r.lone_queries
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

/// `POST /search/image` for `likeness serve`: decode, crop, transform and
/// embed one image with the index's model.
pub struct TorchEmbedder {
    net: std::sync::Mutex<Net>,
    fingerprint: String,
    limits: decode::DecodeLimits,
}

impl TorchEmbedder {
    /// Decodes and crops one request's image.
    fn decode(&self, bytes: &[u8], region: Option<[u32; 4]>) -> Result<image::DynamicImage> {
        let path = Path::new("<request body>");
        let image = decode::decode_bytes(bytes, path, &self.limits)?;
        match region {
            Some([x, y, w, h]) => decode::crop(image, Region { x, y, w, h }, path),
            None => Ok(image),
        }
    }
}

impl likeness_index::serve::ImageEmbedder for TorchEmbedder {
    fn embed(
        &self,
        bytes: &[u8],
        region: Option<[u32; 4]>,
    ) -> std::result::Result<Vec<f32>, String> {
        self.embed_batch(&[(bytes, region)])
            .pop()
            .unwrap_or_else(|| Err("no answer from the embedder".into()))
    }

    /// Decodes the images in parallel (rayon), then one forward pass over
    /// those that decoded; each bad image gets its own error.
    fn embed_batch(
        &self,
        images: &[(&[u8], Option<[u32; 4]>)],
    ) -> Vec<std::result::Result<Vec<f32>, String>> {
        use rayon::prelude::*;
        let decoded: Vec<Result<image::DynamicImage>> =
            images.par_iter().map(|(b, r)| self.decode(b, *r)).collect();
        let good: Vec<&image::DynamicImage> =
            decoded.iter().filter_map(|d| d.as_ref().ok()).collect();
        let rows = if good.is_empty() {
            Ok(Vec::new())
        } else {
            match self.net.lock() {
                Ok(net) => {
                    let input = crate::transform::batch_input(&good, &net.spec, None, &[]);
                    crate::embed::embed_tensor(&net, &input, good.len(), net.vs.device())
                        .map(|v| (v, net.spec.dim as usize))
                        .map(|(v, dim)| v.chunks(dim).map(<[f32]>::to_vec).collect::<Vec<_>>())
                        .map_err(|e| e.to_string())
                }
                Err(_) => Err("the model is unavailable after an earlier failure".to_string()),
            }
        };
        let mut rows = match rows {
            Ok(r) => r.into_iter(),
            Err(e) => return images.iter().map(|_| Err(e.clone())).collect(),
        };
        decoded
            .into_iter()
            .map(|d| match d {
                Ok(_) => rows
                    .next()
                    .ok_or_else(|| "the forward pass returned too few rows".to_string()),
                Err(e) => Err(e.to_string()),
            })
            .collect()
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
}

/// `likeness serve` with a model (the front binary serves vectors alone).
pub fn serve(
    device: crate::runtime::DeviceSpec,
    threads: usize,
    args: likeness_index::cli::ServeArgs,
) -> Result<ExitCode> {
    let opts = args.options(threads)?;
    let index = Index::open(&args.index)?;
    let embedder: Option<std::sync::Arc<dyn likeness_index::serve::ImageEmbedder>> =
        if args.no_model {
            None
        } else {
            let device = device.resolve()?;
            match model_for_index(&index, args.model.as_deref(), device) {
                Ok((net, card, dir)) => {
                    eprintln!(
                        "likeness serve: image queries use the model in {}",
                        dir.display()
                    );
                    Some(std::sync::Arc::new(TorchEmbedder {
                        net: std::sync::Mutex::new(net),
                        fingerprint: card.weights_crc32,
                        limits: decode::DecodeLimits::default(),
                    }))
                }
                // An explicit --model must work; a recorded one may be gone.
                Err(e) if args.model.is_some() => return Err(e),
                Err(e) => {
                    eprintln!("likeness serve: serving vectors only: {e}");
                    None
                }
            }
        };
    drop(index);
    let with_model = embedder.is_some();
    likeness_index::serve::run(&args.index, embedder, &opts)?;
    if with_model {
        // The search threads have run libtorch (each with its own OpenMP
        // team) and rayon does not join them; letting `exit` run libtorch's
        // and libgomp's static destructors under them crashed at shutdown.
        // Everything the server wrote is flushed; leave without destructors.
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        // SAFETY: _exit ends the process at once; no Rust state needs
        // dropping (the index is only mapped read-only, all output flushed).
        unsafe { libc::_exit(0) }
    }
    Ok(ExitCode::SUCCESS)
}
