//! `likeness query` with `--image` (and `--region`) or `--montage`; the
//! vector and id queries are the index crate's.
use std::process::ExitCode;
use std::time::Instant;

use likeness_index::cli::QueryArgs;
use likeness_index::Index;
use tch::Device;

use super::model_for_index;
use crate::data::item_images::ItemImages;
use crate::data::{decode, Region};
use crate::error::{Error, Result};

fn parse_region(s: &str) -> Result<Region> {
    s.parse::<Region>()
        .map_err(|e| Error::Invalid(format!("--region {s}: {e} (expected x,y,w,h in pixels)")))
}

/// `likeness query` with `--image` or `--montage`.
pub fn query(device: Device, threads: usize, args: QueryArgs) -> Result<ExitCode> {
    let start = Instant::now();
    let mut index = Index::open(&args.index)?;
    // --rerank, --plan and --exact-below, as for vector queries.
    index.set_options(likeness_index::cli::search_options(&args))?;
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
