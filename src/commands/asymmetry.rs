//! `likeness asymmetry`: left against right. For each subject with a
//! `left` and a `right` region of the same label in one image (a subject
//! photographed several times gives a pair per photograph), the left crop and the
//! horizontally mirrored right crop are embedded and their distance is the
//! asymmetry (a symmetric face gives about 0). A model trained with
//! `--score-bins` predicts each side's score with its score read-out; with
//! an index that has scores, each side's score is predicted from its
//! neighbours too.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use image::{DynamicImage, RgbImage};
use likeness_app::args::AsymmetryArgs;
use likeness_index::score::{subject_groups, ScoredSet};
use likeness_index::{Index, Metric};
use tch::Device;

use crate::commands::regions;
use crate::data::{Dataset, Side};
use crate::error::{Error, Result};
use crate::train::score::{NoReadout, Readout, Unfamiliar};
use likeness_app::plural::plural;

/// One left/right pair and what was measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pair {
    pub subject: String,
    pub label: String,
    pub left: usize,
    pub right: usize,
    /// Distance between the left crop and the mirrored right crop.
    pub asymmetry: f32,
    pub left_score: Option<f32>,
    pub right_score: Option<f32>,
    pub predicted_left: Option<f32>,
    pub predicted_right: Option<f32>,
    /// The model's score read-out on the left crop and on the mirrored
    /// right crop (each averaged with its mirror image where the model
    /// embeds with test-time flip).
    pub readout_left: Option<f32>,
    pub readout_right: Option<f32>,
    /// The shorter edge, in pixels, of the smaller of the two crops as
    /// decoded (its box, cut at the photo's edge; a whole image without
    /// one).
    pub min_side_px: u32,
}

impl Pair {
    /// Under [`MIN_REGION_PX`]: too small for its two sides to be judged.
    pub fn too_small(&self) -> bool {
        self.min_side_px < MIN_REGION_PX
    }
}

/// A pair whose smaller crop is under this many pixels on its shorter edge
/// is flagged too small to judge (`too_small` in asymmetry.csv, a warning,
/// `too_small_pairs` in summary.json) and left out of the printed and
/// drawn lists of the most and least asymmetric pairs. Measured on the
/// swell set's test.csv shrunk so that its regions measure 8–24 px, with
/// the demo's scores model (`benches/small_regions.py`; docs/scores.md,
/// "Small regions"): under 12 px the cheeks' read-out errs by 0.220 (10 px)
/// and 0.233 (8 px), next to the 0.240 of predicting the mean for every
/// region, and each read-out moves by 0.10–0.14 from its full-size value
/// (at 12 px and above: at most 0.207 and 0.105; 0.184 at full size).
pub const MIN_REGION_PX: u32 = 12;

/// The summary `asymmetry` prints and writes (`summary.json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub pairs: usize,
    pub unpaired: usize,
    pub mean_asymmetry: f64,
    /// With true scores on both sides: ROC AUC of the asymmetry separating
    /// pairs with unequal scores from equal ones.
    pub auc_unequal: Option<f64>,
    /// The same for |predicted left − predicted right| (with --index).
    pub auc_unequal_predicted: Option<f64>,
    /// The same for |read-out left − read-out right| (a model with a score
    /// read-out).
    pub auc_unequal_readout: Option<f64>,
    pub unequal_pairs: usize,
    pub equal_pairs: usize,
    /// Where the model records what its score read-out learnt from: what
    /// in these pairs it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readout_unfamiliar: Option<Unfamiliar>,
    /// How many of the pairs with both sides graded hold a graded row the
    /// model trained on (where its recorded training data can be read):
    /// the ROC AUCs over them measure what it remembers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pairs_trained_on: Option<usize>,
    /// [`MIN_REGION_PX`], the size under which a pair is too small.
    pub min_region_px: u32,
    /// Pairs whose smaller crop's shorter edge is under `min_region_px`
    /// (`too_small` in asymmetry.csv).
    pub too_small_pairs: usize,
}

/// ROC AUC of `values` ranking the `true` items above the `false` ones
/// (ties count one half); `None` without both kinds.
pub fn roc_auc(values: &[f64], positive: &[bool]) -> Option<f64> {
    let ranks = likeness_index::score::ranks(values);
    let np = positive.iter().filter(|&&p| p).count();
    let nn = positive.len() - np;
    if np == 0 || nn == 0 {
        return None;
    }
    let sum: f64 = ranks
        .iter()
        .zip(positive)
        .filter(|(_, &p)| p)
        .map(|(r, _)| r)
        .sum();
    Some((sum - (np * (np + 1)) as f64 / 2.0) / (np * nn) as f64)
}

/// The manifest to read: `--data` itself, or for photos (a folder or an
/// image file) the regions `likeness regions` finds in them (those the
/// model's score read-out learnt from, where it has one), written to
/// `OUT/regions.csv` first.
fn manifest_of(args: &AsymmetryArgs) -> Result<PathBuf> {
    let photos = args.data.is_dir() || crate::data::folder::is_image_file(&args.data);
    if !photos {
        return Ok(args.data.clone());
    }
    crate::error::create_dir(&args.out)?;
    let csv = args.out.join("regions.csv");
    eprintln!(
        "{}: photos, not a manifest: finding their faces and regions first ({})",
        args.data.display(),
        csv.display()
    );
    // A read-out grades the regions it learnt from: place only those (all
    // when it names none that `regions` places).
    let card = crate::train::output::read_card(&args.model)?;
    let known = likeness_app::face::region_names();
    let wanted: Vec<String> = card
        .score_domain
        .map(|d| d.labels)
        .unwrap_or_default()
        .into_iter()
        .filter(|l| known.contains(&l.as_str()))
        .collect();
    if !wanted.is_empty() {
        eprintln!(
            "placing {} only: the regions the model's score read-out learnt from (for others, \
             pass a manifest that `likeness regions` wrote)",
            wanted.join(", ")
        );
    }
    let finder = regions::open_finder(None, Default::default(), args.min_face)?;
    let found = regions::regions_of(
        &finder,
        &args.data,
        &wanted,
        None,
        None,
        args.skip_bad,
        &args.photos.limits(),
    )?;
    if found.iter().all(|f| f.faces.is_empty()) {
        return Err(Error::Invalid(format!(
            "no face found in {} of {}: asymmetry compares a face's two sides; for \
             faces under {} px, pass a smaller `--min-face` (at least {}; their regions may be \
             too small to judge)",
            match found.len() {
                1 => "the one photo".to_string(),
                n => format!("the {n} photos"),
            },
            args.data.display(),
            finder.min_face(),
            likeness_app::face::MIN_FACE_FLOOR
        )));
    }
    regions::write_manifest(&csv, &found)?;
    Ok(csv)
}

/// `likeness asymmetry`.
pub fn run(device: Device, args: AsymmetryArgs) -> Result<ExitCode> {
    let data = manifest_of(&args)?;
    let ds = Dataset::open(&data)?.with_limits(args.photos.limits());
    // Subject, label and image -> (left item, right item).
    let mut sides: BTreeMap<(String, usize, PathBuf), [Option<usize>; 2]> = BTreeMap::new();
    for (i, it) in ds.items().iter().enumerate() {
        let (Some(subject), Some(side)) = (&it.subject, it.side) else {
            continue;
        };
        let slot = sides
            .entry((subject.clone(), it.label, it.path.clone()))
            .or_default();
        let k = usize::from(side == Side::Right);
        if let Some(prev) = slot[k] {
            return Err(Error::Invalid(format!(
                "{}: subject {subject} has two {side} regions labelled {} in {} (lines {} and {})",
                data.display(),
                ds.classes()[it.label],
                it.path.display(),
                ds.items()[prev].line.unwrap_or(0),
                it.line.unwrap_or(0)
            )));
        }
        slot[k] = Some(i);
    }
    if sides.is_empty() {
        return Err(Error::Invalid(format!(
            "{} has no rows with both a subject and a side; asymmetry needs a manifest with a header naming `subject` and `side`",
            data.display()
        )));
    }
    let mut pairs = Vec::new();
    let mut unpaired = Vec::new();
    for ((subject, label, _), s) in &sides {
        match s {
            [Some(l), Some(r)] => pairs.push(Pair {
                subject: subject.clone(),
                label: ds.classes()[*label].clone(),
                left: *l,
                right: *r,
                asymmetry: f32::NAN,
                left_score: ds.items()[*l].score,
                right_score: ds.items()[*r].score,
                predicted_left: None,
                predicted_right: None,
                readout_left: None,
                readout_right: None,
                min_side_px: 0,
            }),
            [Some(i), None] | [None, Some(i)] => unpaired.push(*i),
            [None, None] => {}
        }
    }
    if pairs.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no subject has both a left and a right region of one label ({} one-sided)",
            data.display(),
            unpaired.len()
        )));
    }
    let (net, card) = crate::train::output::load(&args.model, device)?;
    let readout = match Readout::load(&args.model, &card, device)? {
        Ok(r) => Some(r),
        Err(NoReadout::NoNorm) => {
            eprintln!(
                "{}: the score read-out is not used: this model.json predates the recorded score \
                 standardisation; train again to predict scores with it",
                args.model.display()
            );
            None
        }
        Err(NoReadout::NotTrained) => None,
    };
    let index = args.index.as_ref().map(Index::open).transpose()?;
    if let Some(ix) = &index {
        if ix.scores().is_none() {
            return Err(Error::Invalid(format!(
                "{} has no scores; --index needs an index of a manifest with a `score` column",
                ix.dir().display()
            )));
        }
        if ix.dim() != net.spec.dim as usize {
            return Err(Error::Invalid(format!(
                "{} holds vectors of dimension {} but the model makes {}; index with the same model",
                ix.dir().display(),
                ix.dim(),
                net.spec.dim
            )));
        }
    }
    crate::error::create_dir(&args.out)?;

    // Embed left crops and mirrored right crops, a batch of pairs at a time.
    let batch = args
        .batch
        .unwrap_or_else(|| likeness_app::args::default_batch(device.is_cuda()));
    let dim = net.spec.dim as usize;
    let mut left_vecs = Vec::with_capacity(pairs.len() * dim);
    let mut right_vecs = Vec::with_capacity(pairs.len() * dim);
    let mut readouts = Vec::with_capacity(pairs.len() * 2);
    let mut sizes = Vec::with_capacity(pairs.len());
    let bar = likeness_app::progress::bar(pairs.len() as u64, "embedding pairs");
    for chunk in pairs.chunks(batch.div_ceil(2)) {
        let ids: Vec<usize> = chunk.iter().flat_map(|p| [p.left, p.right]).collect();
        let samples = ds.load_many(&ids)?;
        // What the network is shown of each side, before it is enlarged
        // to the model's input.
        sizes.extend(samples.chunks_exact(2).map(|lr| {
            lr.iter()
                .map(|s| s.image.width().min(s.image.height()))
                .min()
                .unwrap_or(0)
        }));
        let images: Vec<DynamicImage> = samples
            .into_iter()
            .enumerate()
            .map(|(j, s)| if j % 2 == 1 { s.image.fliph() } else { s.image })
            .collect();
        let refs: Vec<&DynamicImage> = images.iter().collect();
        let input = crate::transform::batch_input(&refs, &net.spec, None, &[]);
        let (emb, scores) =
            crate::embed::embed_reading_out(&net, readout.as_ref(), &input, refs.len())?;
        readouts.extend(scores.unwrap_or_default());
        for (j, row) in emb.chunks_exact(dim).enumerate() {
            if j % 2 == 0 {
                left_vecs.extend_from_slice(row);
            } else {
                right_vecs.extend_from_slice(row);
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    for (p, size) in pairs.iter_mut().zip(sizes) {
        p.min_side_px = size;
    }
    let metric = index.as_ref().map_or(Metric::Cosine, |ix| ix.metric());
    metric.preprocess(&mut left_vecs, dim)?;
    metric.preprocess(&mut right_vecs, dim)?;
    for (i, p) in pairs.iter_mut().enumerate() {
        p.asymmetry = metric.distance(
            &left_vecs[i * dim..(i + 1) * dim],
            &right_vecs[i * dim..(i + 1) * dim],
        );
    }
    if readout.is_some() {
        for (p, lr) in pairs.iter_mut().zip(readouts.chunks_exact(2)) {
            p.readout_left = Some(lr[0]).filter(|v| v.is_finite());
            p.readout_right = Some(lr[1]).filter(|v| v.is_finite());
        }
    }
    if let Some(ix) = &index {
        // The subject's own regions in the index are left out of its
        // predictions, as in `eval --score`.
        let pairings = ix.pairings()?;
        let n = ix.len();
        let names: Vec<Option<&str>> = (0..n)
            .map(|i| pairings.get(i).and_then(|p| p.subject.as_deref()))
            .chain(pairs.iter().map(|p| Some(p.subject.as_str())))
            .collect();
        let groups = subject_groups(names);
        let set = ScoredSet {
            vectors: ix.vectors(),
            scores: ix.scores().unwrap_or(&[]),
            groups: Some(&groups[..n]),
            dim,
            metric,
        };
        // The right crops are embedded mirrored; the index holds them as
        // they are, so they are predicted from their unmirrored embedding.
        let right_ids: Vec<usize> = pairs.iter().map(|p| p.right).collect();
        let mut right_plain = crate::embed::embed_items(&net, &ds, &right_ids, batch, None)?;
        metric.preprocess(&mut right_plain, dim)?;
        let pl = set.predict(&left_vecs, Some(&groups[n..]), args.score_k)?;
        let pr = set.predict(&right_plain, Some(&groups[n..]), args.score_k)?;
        for ((p, l), r) in pairs.iter_mut().zip(pl).zip(pr) {
            p.predicted_left = Some(l.score).filter(|v| v.is_finite());
            p.predicted_right = Some(r.score).filter(|v| v.is_finite());
        }
    }
    pairs.sort_by(|a, b| b.asymmetry.total_cmp(&a.asymmetry));

    let mut summary = summarise(&pairs, unpaired.len());
    if let Some(domain) = readout.as_ref().and_then(|r| r.domain.as_ref()) {
        let sides = pairs
            .iter()
            .flat_map(|p| [p.readout_left, p.readout_right].map(|v| (p.label.as_str(), v)));
        let u = Unfamiliar::of(domain, sides);
        u.warn(
            domain,
            "readout_left/right in asymmetry.csv",
            "look at them in asymmetry.png",
        );
        summary.readout_unfamiliar = Some(u);
    }
    summary.pairs_trained_on = warn_if_trained_on(&args.model, &ds, &pairs);
    if let Some(w) = too_small_warning(&pairs, data != args.data) {
        eprintln!("{w}");
    }
    write_csv(&args.out.join("asymmetry.csv"), &ds, &pairs)?;
    write_unpaired(&args.out.join("unpaired.csv"), &ds, &unpaired)?;
    let json = serde_json::to_vec_pretty(&summary).map_err(|e| Error::Invalid(e.to_string()))?;
    likeness_index::atomic_write(&args.out.join("summary.json"), |f| {
        use std::io::Write;
        f.write_all(&json)
    })?;
    let shown = listed(&pairs);
    draw_montage(&args.out.join("asymmetry.png"), &ds, &shown, args.show)?;

    likeness_app::outln!(
        "{}, mean asymmetry {:.4}; {} listed in {}",
        plural(summary.pairs, "left/right pair"),
        summary.mean_asymmetry,
        plural(summary.unpaired, "one-sided region"),
        args.out.join("unpaired.csv").display()
    )?;
    // The number alone said nothing of what it measures, and the subject
    // alone did not say which photograph: a person's folder of 11 photos
    // gives 11 pairs of one subject and label.
    likeness_app::outln!(
        "  asymmetry: the {metric} distance of the left crop's embedding and the mirrored \
         right crop's (0: alike); the most asymmetric pairs, by it:"
    )?;
    if summary.too_small_pairs > 0 {
        let which = if summary.too_small_pairs == pairs.len() {
            "every pair is under".to_string()
        } else {
            format!("{} under", plural(summary.too_small_pairs, "pair"))
        };
        likeness_app::outln!(
            "  {which} {MIN_REGION_PX} px, too small to judge (too_small in asymmetry.csv): {}",
            if summary.too_small_pairs == pairs.len() {
                "listed all the same, each marked"
            } else {
                "left out of this list"
            }
        )?;
    }
    for p in shown.iter().take(3) {
        likeness_app::outln!(
            "  most asymmetric: {} {} {:.4}{}{} in {}",
            p.subject,
            p.label,
            p.asymmetry,
            if p.too_small() {
                format!(" (too small: {} px)", p.min_side_px)
            } else {
                String::new()
            },
            match (
                p.readout_left,
                p.readout_right,
                p.predicted_left,
                p.predicted_right
            ) {
                (Some(l), Some(r), _, _) => format!(
                    " (read-out left {l:.3}, right {r:.3}, difference {:.3})",
                    l - r
                ),
                (_, _, Some(l), Some(r)) => format!(
                    " (predicted left {l:.3}, right {r:.3}, difference {:.3})",
                    l - r
                ),
                _ => String::new(),
            },
            ds.items()[p.left].path.display()
        )?;
    }
    for line in auc_lines(&summary, args.score_k) {
        likeness_app::outln!("{line}")?;
    }
    eprintln!(
        "wrote {}, {}",
        args.out.join("asymmetry.csv").display(),
        args.out.join("asymmetry.png").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Below this many pairs of either kind (unequal or equal true scores) an
/// ROC AUC is printed with a word that it means little: with 10 of each,
/// the Hanley-McNeil standard error of an AUC of 0.5 is already 0.13 (a 95%
/// interval of about ±0.26); with 1 equal pair and 20 unequal ones it is
/// 0.30, and the AUC can only be a multiple of 1/20.
pub const FEW_PAIRS: usize = 10;

/// The ROC AUC lines `asymmetry` prints, each with the counts it rests on
/// and, where either kind has fewer than [`FEW_PAIRS`], a word that it
/// means little (a manifest with one equal pair printed a bare
/// `ROC AUC ... 1.0000`).
fn auc_lines(s: &Summary, score_k: usize) -> Vec<String> {
    let few = if s.unequal_pairs.min(s.equal_pairs) < FEW_PAIRS {
        format!(
            " (too few pairs to mean much: {} and {}, under {FEW_PAIRS} of either; grade more \
             pairs)",
            plural(s.unequal_pairs, "unequal pair"),
            plural(s.equal_pairs, "equal pair")
        )
    } else {
        String::new()
    };
    let mut lines = Vec::new();
    if let Some(auc) = s.auc_unequal {
        lines.push(format!(
            "ROC AUC of the asymmetry, unequal ({}) vs equal ({}) true scores: {auc:.4}{few}",
            s.unequal_pairs, s.equal_pairs
        ));
    }
    if let Some(auc) = s.auc_unequal_readout {
        lines.push(format!(
            "ROC AUC of |read-out left - right| (the model's score read-out), the same split: \
             {auc:.4}{few}"
        ));
    }
    if let Some(auc) = s.auc_unequal_predicted {
        lines.push(format!(
            "ROC AUC of |predicted left - right| (K = {score_k} neighbours in the index), the \
             same split: {auc:.4}{few}"
        ));
    }
    lines
}

/// Pairs graded on both sides whose rows the model trained on: a user who
/// grades a few regions, trains, and runs `asymmetry` on the same manifest
/// was shown `ROC AUC ... 1.0000` with no word that the model had learnt
/// those very grades (as `eval --score` says of such an index). Returns
/// how many such pairs there are, `None` when the model's training data
/// cannot be read.
fn warn_if_trained_on(model: &std::path::Path, ds: &Dataset, pairs: &[Pair]) -> Option<usize> {
    let trained = crate::commands::eval::TrainedRows::of(model)?;
    let graded: Vec<&Pair> = pairs
        .iter()
        .filter(|p| p.left_score.is_some() && p.right_score.is_some())
        .collect();
    let seen = graded
        .iter()
        .filter(|p| {
            [p.left, p.right].iter().any(|&i| {
                let info = crate::gallery::item_info(ds, i);
                trained.contains(&info.source, info.region)
            })
        })
        .count();
    if seen > 0 {
        eprintln!(
            "warning: {seen} of the {} pairs graded on both sides hold graded rows that {} \
             trained on ({}): their grades were learnt, so the ROC AUCs below measure what the \
             model remembers, not how it tells new faces' sides apart; run asymmetry on graded \
             photographs it did not train on (e.g. train on some people's grades, measure on \
             the others')",
            graded.len(),
            model.display(),
            trained.data.display()
        );
    }
    Some(seen)
}

fn summarise(pairs: &[Pair], unpaired: usize) -> Summary {
    let mean =
        pairs.iter().map(|p| f64::from(p.asymmetry)).sum::<f64>() / pairs.len().max(1) as f64;
    let known: Vec<(&Pair, bool)> = pairs
        .iter()
        .filter_map(|p| match (p.left_score, p.right_score) {
            (Some(l), Some(r)) => Some((p, (l - r).abs() > 1e-6)),
            _ => None,
        })
        .collect();
    let positive: Vec<bool> = known.iter().map(|&(_, u)| u).collect();
    let auc = roc_auc(
        &known
            .iter()
            .map(|(p, _)| f64::from(p.asymmetry))
            .collect::<Vec<_>>(),
        &positive,
    );
    // ROC AUC of |left - right| of a pair's two predictions, where every
    // pair has both.
    let auc_of = |sides: fn(&Pair) -> (Option<f32>, Option<f32>)| {
        let diffs: Option<Vec<f64>> = known
            .iter()
            .map(|(p, _)| match sides(p) {
                (Some(l), Some(r)) => Some(f64::from((l - r).abs())),
                _ => None,
            })
            .collect();
        diffs.and_then(|d| roc_auc(&d, &positive))
    };
    let auc_pred = auc_of(|p| (p.predicted_left, p.predicted_right));
    let auc_readout = auc_of(|p| (p.readout_left, p.readout_right));
    Summary {
        pairs: pairs.len(),
        unpaired,
        mean_asymmetry: mean,
        auc_unequal: auc,
        auc_unequal_predicted: auc_pred,
        auc_unequal_readout: auc_readout,
        unequal_pairs: positive.iter().filter(|&&u| u).count(),
        equal_pairs: positive.iter().filter(|&&u| !u).count(),
        readout_unfamiliar: None,
        pairs_trained_on: None,
        min_region_px: MIN_REGION_PX,
        too_small_pairs: pairs.iter().filter(|p| p.too_small()).count(),
    }
}

/// The warning `asymmetry` prints when some pairs are too small to judge:
/// how many, the smallest, and what to do. `None` when none is.
fn too_small_warning(pairs: &[Pair], photos: bool) -> Option<String> {
    let small: Vec<&Pair> = pairs.iter().filter(|p| p.too_small()).collect();
    let smallest = small.iter().map(|p| p.min_side_px).min()?;
    let what_to_do = if photos {
        "to judge them, use larger photos of those faces, or pass `--min-face N` to leave faces \
         under N px across out"
    } else {
        "to judge them, place the regions on larger photos of those faces (`likeness regions \
         --min-face N` leaves faces under N px across out)"
    };
    Some(format!(
        "warning: {} of {} {} a region under {MIN_REGION_PX} px on its shorter edge (the \
         smallest {smallest} px): too small to judge (at that size a score read-out errs \
         nearly as much as a guess of the mean grade: docs/scores.md, \"Small regions\"). \
         They are marked too_small in asymmetry.csv and left out of the most and least \
         asymmetric lists below and in asymmetry.png; {what_to_do}",
        small.len(),
        plural(pairs.len(), "left/right pair"),
        if small.len() == 1 { "has" } else { "have" }
    ))
}

/// The pairs to list and draw as the most and least asymmetric: those large
/// enough to judge, in order (all, when none is). Blurred pairs otherwise
/// filled the top of the list (mostly blur, their two sides' embeddings
/// differ most), hiding the pairs that can be judged.
fn listed(pairs: &[Pair]) -> Vec<&Pair> {
    let judged: Vec<&Pair> = pairs.iter().filter(|p| !p.too_small()).collect();
    if judged.is_empty() {
        pairs.iter().collect()
    } else {
        judged
    }
}

fn csv_err(path: &std::path::Path, e: csv::Error) -> Error {
    Error::Invalid(format!("{}: {e}", path.display()))
}

fn write_csv(path: &std::path::Path, ds: &Dataset, pairs: &[Pair]) -> Result<()> {
    let mut w = csv::Writer::from_path(path).map_err(|e| csv_err(path, e))?;
    w.write_record([
        "rank",
        "subject",
        "label",
        "asymmetry",
        "left_score",
        "right_score",
        "predicted_left",
        "predicted_right",
        "predicted_difference",
        "readout_left",
        "readout_right",
        "readout_difference",
        "left_path",
        "right_path",
        "min_side_px",
        "too_small",
    ])
    .map_err(|e| csv_err(path, e))?;
    let f = |v: Option<f32>| v.map(|v| format!("{v:.4}")).unwrap_or_default();
    for (r, p) in pairs.iter().enumerate() {
        let diff = |l: Option<f32>, r: Option<f32>| l.zip(r).map(|(l, r)| l - r);
        w.write_record([
            (r + 1).to_string(),
            p.subject.clone(),
            p.label.clone(),
            format!("{:.6}", p.asymmetry),
            f(p.left_score),
            f(p.right_score),
            f(p.predicted_left),
            f(p.predicted_right),
            f(diff(p.predicted_left, p.predicted_right)),
            f(p.readout_left),
            f(p.readout_right),
            f(diff(p.readout_left, p.readout_right)),
            ds.items()[p.left].path.display().to_string(),
            ds.items()[p.right].path.display().to_string(),
            p.min_side_px.to_string(),
            p.too_small().to_string(),
        ])
        .map_err(|e| csv_err(path, e))?;
    }
    w.flush().map_err(|e| Error::io(path, e))
}

fn write_unpaired(path: &std::path::Path, ds: &Dataset, items: &[usize]) -> Result<()> {
    let mut w = csv::Writer::from_path(path).map_err(|e| csv_err(path, e))?;
    w.write_record(["line", "subject", "label", "side", "path"])
        .map_err(|e| csv_err(path, e))?;
    for &i in items {
        let it = &ds.items()[i];
        w.write_record([
            it.line.map(|l| l.to_string()).unwrap_or_default(),
            it.subject.clone().unwrap_or_default(),
            ds.classes()[it.label].clone(),
            it.side.map(|s| s.to_string()).unwrap_or_default(),
            it.path.display().to_string(),
        ])
        .map_err(|e| csv_err(path, e))?;
    }
    w.flush().map_err(|e| Error::io(path, e))
}

/// The most and the least asymmetric pairs: the left crop beside the
/// mirrored right crop, the subject and the numbers under them.
fn draw_montage(path: &std::path::Path, ds: &Dataset, pairs: &[&Pair], show: usize) -> Result<()> {
    let show = show.max(1);
    let mut picked: Vec<(&Pair, bool)> = pairs.iter().take(show).map(|&p| (p, true)).collect();
    let tail = pairs.len().saturating_sub(show).max(show.min(pairs.len()));
    picked.extend(pairs[tail..].iter().map(|&p| (p, false)));
    let rows: Result<Vec<(RgbImage, RgbImage, String, bool)>> = picked
        .iter()
        .map(|&(p, most)| {
            let l = ds.load(p.left)?.image;
            let r = ds.load(p.right)?.image.fliph();
            // Which face it is on the first line, the numbers on the second.
            let mut text = format!("{}\n{} {:.3}", p.subject, p.label, p.asymmetry);
            // Drawn only when every pair is too small: each says so.
            if p.too_small() {
                text.push_str(&format!(" TOO SMALL {} px", p.min_side_px));
            }
            if let (Some(a), Some(b)) = (p.left_score, p.right_score) {
                text.push_str(&format!(" true {a:.2}/{b:.2}"));
            }
            if let (Some(a), Some(b)) = (p.readout_left, p.readout_right) {
                text.push_str(&format!(" read-out {a:.2}/{b:.2}"));
            } else if let (Some(a), Some(b)) = (p.predicted_left, p.predicted_right) {
                text.push_str(&format!(" pred {a:.2}/{b:.2}"));
            }
            Ok((
                likeness_app::montage::thumb(&l),
                likeness_app::montage::thumb(&r),
                text,
                most,
            ))
        })
        .collect();
    Ok(likeness_app::montage::pair_rows(path, &rows?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(asymmetry: f32, left: f32, right: f32) -> Pair {
        Pair {
            subject: "ann".into(),
            label: "cheek".into(),
            left: 0,
            right: 1,
            asymmetry,
            left_score: Some(left),
            right_score: Some(right),
            predicted_left: None,
            predicted_right: None,
            readout_left: Some(left),
            readout_right: Some(right),
            min_side_px: 30,
        }
    }

    /// One equal pair beside unequal ones gave a bare `ROC AUC ... 1.0000`:
    /// now the line says it rests on too few pairs, and with 10 of each
    /// kind it does not.
    #[test]
    fn an_auc_over_few_pairs_says_so() {
        let mut pairs: Vec<Pair> = (0..12).map(|i| pair(0.5 + i as f32, 0.0, 1.0)).collect();
        pairs.push(pair(0.1, 0.5, 0.5));
        let s = summarise(&pairs, 0);
        assert_eq!((s.unequal_pairs, s.equal_pairs), (12, 1));
        let lines = auc_lines(&s, 5);
        assert_eq!(lines.len(), 2, "{lines:?}");
        for l in &lines {
            assert!(
                l.contains("too few pairs to mean much: 12 unequal pairs and 1 equal pair"),
                "{l}"
            );
        }
        pairs.extend((0..9).map(|i| pair(0.2 + i as f32 * 0.01, 0.5, 0.5)));
        let s = summarise(&pairs, 0);
        assert_eq!((s.unequal_pairs, s.equal_pairs), (12, 10));
        let lines = auc_lines(&s, 5);
        assert!(lines[0].ends_with("true scores: 1.0000"), "{lines:?}");
        assert!(lines.iter().all(|l| !l.contains("too few")), "{lines:?}");
    }
}
