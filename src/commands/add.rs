//! `likeness add --data`: images embedded with the index's model and added
//! to the index in place (the vectors form is the app's).
use std::process::ExitCode;
use std::time::Instant;

use likeness_app::args::{AddArgs, EmbedRunArgs};
use likeness_index::labels::item_label;
use likeness_index::{ItemInfo, LabelName, NewItems, Writer};
use tch::Device;

use super::embed::{options, report_embed};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gallery;

pub fn run(device: Device, threads: usize, args: AddArgs) -> Result<ExitCode> {
    let start = Instant::now();
    let Some(data) = &args.data else {
        return Err(Error::Invalid("add: --data is required here".into()));
    };
    let run = EmbedRunArgs {
        batch: args.batch,
        skip_bad: args.skip_bad,
        force: false,
        prefetch: None,
        photos: args.photos,
    };
    let opts = options(&run, device)?;
    // --ids-out, then the lock: a path that cannot be written or a busy
    // index fails before the (long) embedding and before anything is added.
    let ids_out = args
        .ids_out
        .as_deref()
        .map(likeness_app::commands::add::IdsOut::prepare)
        .transpose()?;
    let mut writer = Writer::open(&args.index)?;
    writer.threads(threads);
    let manifest = writer.index().manifest().clone();
    let model = match (&args.model, &manifest.model_dir) {
        (Some(m), _) => m.clone(),
        (None, Some(m)) => m.into(),
        (None, None) => {
            return Err(Error::Invalid(format!(
                "{} records no model; give --model (the one that built the index)",
                args.index.display()
            )))
        }
    };
    let (net, card) = crate::train::output::load(&model, device)?;
    if let Some(fp) = &manifest.model_fingerprint {
        if *fp != card.weights_crc32 {
            return Err(Error::Invalid(format!(
                "{} was built with another model (fingerprint {fp}, {} has {}); its vectors would not compare",
                args.index.display(),
                model.display(),
                card.weights_crc32
            )));
        }
    }
    let ds = Dataset::open(data)?.with_limits(args.photos.limits());
    if ds.is_empty() {
        return Err(Error::EmptyDataset {
            path: ds.root().to_path_buf(),
            hint: "there are no images to add".into(),
        });
    }
    // Class names: the index's, then any new ones of this data.
    let mut classes = manifest.classes.clone();
    let label_of: Vec<i64> = ds
        .classes()
        .iter()
        .map(|c| item_label(&mut classes, &LabelName::Name(c.clone())))
        .collect::<likeness_index::Result<_>>()?;
    let dim = net.spec.dim as usize;
    let mut vectors = Vec::with_capacity(ds.len() * dim);
    let mut labels = Vec::with_capacity(ds.len());
    let mut items: Vec<ItemInfo> = Vec::with_capacity(ds.len());
    let mut kept = Vec::with_capacity(ds.len());
    let all: Vec<usize> = (0..ds.len()).collect();
    let bar = likeness_app::progress::bar(ds.len() as u64, "embedding");
    let res = gallery::embed_stream(&net, &ds, &all, &opts, Some(&bar), |emb, k| {
        vectors.extend_from_slice(emb);
        for &i in k {
            labels.push(label_of[ds.items()[i].label]);
            items.push(gallery::item_info(&ds, i));
            kept.push(i);
        }
        Ok(())
    });
    bar.finish_and_clear();
    let stats = res?;
    report_embed(&stats, &net, stats.embedded, &args.index)?;
    if stats.embedded == 0 {
        return Err(Error::Invalid(format!(
            "none of the {} images of {} could be used",
            ds.len(),
            ds.root().display()
        )));
    }
    let scores: Option<Vec<f32>> = match (ds.scores(), writer.index().scores()) {
        (Some(all), Some(_)) => Some(kept.iter().map(|&i| all[i]).collect()),
        _ => None,
    };
    let new = NewItems {
        vectors: &vectors,
        labels: writer.index().labels().map(|_| &labels[..]),
        scores: scores.as_deref(),
        items: Some(&items),
        classes: (classes.len() > manifest.classes.len()).then_some(&classes[..]),
    };
    let ids = likeness_app::commands::add::add_items(&mut writer, &new)?;
    Ok(likeness_app::commands::add::finish(
        &writer,
        &args.index,
        ids,
        ids_out,
        start,
    )?)
}
