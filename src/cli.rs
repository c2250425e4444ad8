//! Command-line interface: raw arguments (clap derive) → validated settings →
//! library calls. `main.rs` only parses and reports errors.
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::runtime::{self, DeviceSpec};

/// likeness: learn what looks alike from labelled images, index a gallery,
/// find the nearest matches fast.
#[derive(Debug, Parser)]
#[command(name = "likeness", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Where torch runs: auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, global = true, default_value = "auto", env = "LIKENESS_DEVICE")]
    pub device: DeviceSpec,
    /// Threads for torch's intra-op pool and rayon [default: all cores; on
    /// CUDA torch gets 2, the loader all cores].
    #[arg(long, global = true, env = "LIKENESS_THREADS")]
    pub threads: Option<usize>,
    /// torch's intra-op threads only (overrides --threads).
    #[arg(long, global = true, env = "LIKENESS_TORCH_THREADS")]
    pub torch_threads: Option<usize>,
    /// rayon's threads only: decoding, augmentation, search (overrides --threads).
    #[arg(long, global = true, env = "LIKENESS_LOADER_THREADS")]
    pub loader_threads: Option<usize>,
}

impl GlobalArgs {
    /// The thread counts for `command` (CUDA's defaults only where the
    /// command runs torch on a GPU).
    pub fn thread_plan(&self, command: &Command) -> Result<runtime::ThreadPlan> {
        let torch = match command {
            Command::Build(_) | Command::Verify(_) | Command::Inspect(_) => false,
            Command::Query(q) => q.needs_torch(),
            Command::Serve(s) => !s.no_model,
            _ => true,
        };
        let req = runtime::ThreadRequest {
            threads: self.threads,
            torch: self.torch_threads,
            loader: self.loader_threads,
        };
        runtime::plan_threads(req, torch && self.device.is_cuda(), runtime::cores())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that this machine can run likeness: libtorch, CUDA, threads, data.
    Doctor(DoctorArgs),
    /// List a data source: kind, classes, counts, regions; --check decodes every image.
    Inspect(InspectArgs),
    /// Train an embedding network with the multi-class N-pair loss.
    Train(Box<TrainArgs>),
    /// Build an HNSW index directory from a .npy of vectors (f16/f32/f64).
    Build(likeness_index::cli::BuildArgs),
    /// Find the k nearest items of each query vector in an index.
    Query(likeness_index::cli::QueryArgs),
    /// Check every file of an index directory (sizes, CRC32s, graph links).
    Verify(likeness_index::cli::VerifyArgs),
    /// Encode images with a trained model into vectors.npy (+ labels, items).
    Embed(crate::commands::EmbedArgs),
    /// Encode a gallery and build its index in one step.
    Index(crate::commands::IndexArgs),
    /// Retrieval metrics of an index: Recall@K, P@1, R-Precision, MAP@R, ANN agreement.
    Eval(crate::commands::EvalArgs),
    /// Answer queries over HTTP (JSON) from a memory-mapped index.
    Serve(likeness_index::cli::ServeArgs),
    /// Write the SYNTHETIC graded facial regions set (swollen cheeks and
    /// under-eyes of the johns crops, known scores and sides); `make data` runs it.
    SynthSwell(crate::commands::swell::SwellArgs),
    /// Left against right: for each subject with a left and a right region of
    /// one label, the distance between the left crop and the mirrored right
    /// crop (and, with --index, each side's predicted score).
    Asymmetry(crate::commands::asymmetry::AsymmetryArgs),
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training images: an image folder, a .csv manifest (with optional
    /// region boxes) or an IDX images file.
    #[arg(long)]
    pub data: PathBuf,
    /// Output folder for the model (weights.safetensors, model.json, model.pt, ...).
    #[arg(long)]
    pub out: PathBuf,
    /// Backbone: convnet (small images, CPU), resnet18 (faces, 112-224 px) or
    /// torchscript:PATH (fine-tune a TorchScript backbone with a projection head).
    #[arg(long, default_value = "convnet")]
    pub arch: crate::model::Arch,
    /// Embedding dimension.
    #[arg(long, default_value_t = 64)]
    pub dim: u32,
    /// Channel multiplier of convnet (1: 32, 32, 64, 64, 128 channels).
    #[arg(long, default_value_t = 1.25)]
    pub width: f32,
    /// Square input size in pixels [default: convnet: the images' median
    /// side rounded up to a multiple of 4, within 20-64; 112 otherwise].
    #[arg(long)]
    pub input_size: Option<u32>,
    /// N: distinct classes per tuple [default: min(#classes, 32)].
    #[arg(long)]
    pub classes_per_tuple: Option<usize>,
    /// T: independent N-pair tuples per step (batch = 2·N·T images).
    #[arg(long, default_value_t = 2)]
    pub tuples: usize,
    /// Loss: npair-mc (Sohn 2016), npair-ovo, or triplet (batch-hard).
    #[arg(long, value_enum, default_value_t = crate::train::loss::LossKind::NpairMc)]
    pub loss: crate::train::loss::LossKind,
    /// λ of the L2 penalty on embedding norms.
    #[arg(long, default_value_t = 0.008)]
    pub l2_reg: f64,
    /// Margin of the triplet loss.
    #[arg(long, default_value_t = 1.0)]
    pub margin: f64,
    /// C > N: sample C classes per tuple and mine the N hardest (Sohn §3.2).
    #[arg(long)]
    pub mine_classes: Option<usize>,
    /// Passes over the training images [default: none: train until the
    /// held-out Recall@1 stops improving (--patience), or --max-steps].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Without --epochs: the most steps [default: 8 passes over the
    /// training images, within 500-10,000]; the learning rate's cosine ends there.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Without --epochs: no early stop before this step [default: a quarter
    /// of --max-steps].
    #[arg(long)]
    pub min_steps: Option<usize>,
    /// Without --epochs: linear learning-rate warm-up [default: 2% of
    /// --max-steps, at most 200].
    #[arg(long)]
    pub warmup_steps: Option<usize>,
    /// Without --epochs: stop after this many validations (and a tenth of
    /// --max-steps) without a better held-out Recall@1 (the best weights
    /// are kept).
    #[arg(long, default_value_t = crate::train::defaults::DEFAULT_PATIENCE)]
    pub patience: usize,
    /// Stop at the first step past this much time (300, 90s, 5m, 1.5h), then
    /// validate and save; without --epochs the learning rate ends there.
    #[arg(long, value_parser = crate::train::defaults::parse_duration)]
    pub time_budget: Option<f64>,
    /// Without --epochs: steps between validations [default: measured, so
    /// that validation costs at most 10% of the time].
    #[arg(long)]
    pub val_steps: Option<usize>,
    /// Train from grades: B quantile bins of the manifest's `score` column
    /// become the classes of N-pair sampling (every row needs a score); the
    /// bin edges go into model.json.
    #[arg(long)]
    pub score_bins: Option<usize>,
    /// With --score-bins: weight of a linear read-out of the (standardised)
    /// score from the embedding, trained by squared error beside the N-pair
    /// loss, which orders the embedding by grade; 0 = the bins alone
    /// [default: 1].
    #[arg(long)]
    pub score_weight: Option<f64>,
    /// Steps per epoch [default: training images / images per step].
    #[arg(long)]
    pub steps_per_epoch: Option<usize>,
    /// Adam learning rate.
    #[arg(long, default_value_t = 4e-3)]
    pub lr: f64,
    /// Learning-rate schedule over all steps.
    #[arg(long, value_enum, default_value_t = crate::train::LrSchedule::Cosine)]
    pub lr_schedule: crate::train::LrSchedule,
    /// Forward-pass precision: fp32, or bf16 (autocast, as torch.autocast)
    /// [default: bf16 where the CPU has AMX or AVX512-BF16, else fp32].
    #[arg(long, value_enum)]
    pub precision: Option<crate::runtime::Precision>,
    /// Adam weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Held-out set: none, images:F (fraction of each class's images, at
    /// least 2 where a class has 4 or more) or
    /// classes:F (the last fraction of classes: zero-shot) [default:
    /// images:0.1, or none when --val-data is given].
    #[arg(long)]
    pub val: Option<crate::train::ValSplit>,
    /// Validate on another source (e.g. the test split); with --val
    /// classes:F, only its images of the held-out classes.
    #[arg(long)]
    pub val_data: Option<PathBuf>,
    /// Mirror images at random in training [default: on, unless two class
    /// names differ only by left/right, e.g. left_eye and right_eye].
    #[arg(long, overrides_with = "no_flip")]
    pub flip: bool,
    /// Do not mirror images (for left/right-sensitive regions).
    #[arg(long)]
    pub no_flip: bool,
    /// Test-time flip: validation, embedding and model.pt use the sum of the
    /// unit embeddings of each image and its mirror image (2 forward passes)
    /// [default: as the training flip].
    #[arg(long, overrides_with = "no_flip_tta")]
    pub flip_tta: bool,
    /// No test-time flip.
    #[arg(long)]
    pub no_flip_tta: bool,
    /// Random resized crop: smallest area fraction kept (1 = no crop).
    #[arg(long, default_value_t = 1.0)]
    pub min_crop: f32,
    /// Drop classes with fewer training images than this (at least 2)
    /// instead of refusing them.
    #[arg(long, default_value_t = 0)]
    pub min_per_class: usize,
    /// Seed of weights, sampling, splits and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Continue an interrupted training in --out: the same command plus
    /// --resume (other settings are refused).
    #[arg(long)]
    pub resume: bool,
    /// Overwrite a model, or start over an interrupted training, in --out.
    #[arg(long)]
    pub force: bool,
    /// Batch size when embedding the held-out set.
    #[arg(long, default_value_t = 512)]
    pub eval_batch: usize,
    /// Validate after every N-th epoch (and always after the last); the best
    /// checkpoint is chosen among the validated epochs.
    #[arg(long, default_value_t = 1)]
    pub val_every: usize,
}

impl TrainArgs {
    fn into_config(self) -> crate::train::TrainConfig {
        use crate::train::ValSplit;
        let val = self.val.unwrap_or(if self.val_data.is_some() {
            ValSplit::None
        } else {
            ValSplit::Images(0.1)
        });
        crate::train::TrainConfig {
            data: self.data,
            out: self.out,
            arch: self.arch,
            dim: self.dim,
            width: self.width,
            flip_tta: match (self.flip_tta, self.no_flip_tta) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
            input_size: self.input_size,
            classes_per_tuple: self.classes_per_tuple,
            tuples: self.tuples,
            loss: crate::train::loss::LossConfig {
                kind: self.loss,
                l2_reg: self.l2_reg,
                margin: self.margin,
            },
            mine_classes: self.mine_classes,
            epochs: self.epochs,
            steps_per_epoch: self.steps_per_epoch,
            lr: self.lr,
            lr_schedule: self.lr_schedule,
            precision: self.precision,
            weight_decay: self.weight_decay,
            val,
            val_data: self.val_data,
            flip: match (self.flip, self.no_flip) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
            augment: crate::transform::Augment {
                flip: !self.no_flip,
                min_crop: self.min_crop,
            },
            min_per_class: self.min_per_class,
            seed: self.seed,
            resume: self.resume,
            force: self.force,
            eval_batch: self.eval_batch,
            val_every: self.val_every,
            max_steps: self.max_steps,
            min_steps: self.min_steps,
            warmup_steps: self.warmup_steps,
            patience: self.patience,
            time_budget: self.time_budget,
            val_steps: self.val_steps,
            score_bins: self.score_bins,
            score_weight: self.score_weight,
        }
    }
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// An image folder (root/<class>/<image>), a .csv manifest
    /// (path,label[,x,y,w,h]) or an IDX images file (*-images-idx3-ubyte[.gz]).
    pub source: PathBuf,
    /// Decode every image (and crop every region) to find bad ones.
    #[arg(long)]
    pub check: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs a parsed command line; the exit code is 0 on success.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let plan = cli.global.thread_plan(&cli.command)?;
    runtime::init_threads(&plan);
    let threads = plan.loader;
    match cli.command {
        Command::Doctor(args) => doctor(cli.global.device, &plan, args),
        Command::Inspect(args) => inspect(args),
        Command::Train(args) => train(cli.global.device, &plan, *args),
        Command::Build(args) => likeness_index::cli::build(threads, args).map_err(Error::from),
        Command::Query(args) if args.needs_torch() => {
            crate::commands::query::query(cli.global.device.resolve()?, threads, args)
        }
        Command::Query(args) => likeness_index::cli::query(threads, args).map_err(Error::from),
        Command::Embed(args) => crate::commands::embed::embed(cli.global.device.resolve()?, args),
        Command::Index(args) => {
            crate::commands::index::index(cli.global.device.resolve()?, threads, args)
        }
        Command::Eval(args) => crate::commands::eval::eval(cli.global.device.resolve()?, args),
        Command::Serve(args) => crate::commands::serve::serve(cli.global.device, threads, args),
        Command::Verify(args) => likeness_index::cli::verify(args).map_err(Error::from),
        Command::SynthSwell(args) => crate::commands::swell::synth_swell(args),
        Command::Asymmetry(args) => {
            crate::commands::asymmetry::asymmetry(cli.global.device.resolve()?, args)
        }
    }
}

fn doctor(device: DeviceSpec, plan: &runtime::ThreadPlan, args: DoctorArgs) -> Result<ExitCode> {
    let report = crate::doctor::report(device, plan)?;
    let out = if args.json {
        serde_json::to_string(&report).map_err(|e| Error::Invalid(e.to_string()))?
    } else {
        report.render()
    };
    print_line(&out);
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn train(device: DeviceSpec, plan: &runtime::ThreadPlan, args: TrainArgs) -> Result<ExitCode> {
    let device = device.resolve()?;
    eprintln!(
        "likeness train: {}; threads: {plan}",
        runtime::describe_device(device)
    );
    crate::train::install_ctrlc();
    let cfg = args.into_config();
    match crate::train::train(&cfg, device)? {
        crate::train::Outcome::Finished(card) => {
            let best = card.best().map(|e| e.summary()).unwrap_or_default();
            let stopped = card
                .run
                .as_ref()
                .map(|r| format!("; {} at step {}", r.stopped, r.steps))
                .unwrap_or_default();
            let mut msg = format!(
                "trained in {:.1}s ({:.1}s of steps{stopped}); best {}",
                card.total_seconds, card.train_seconds, best,
            );
            if let Some(v) = card.best().and_then(|e| e.validation.as_ref()) {
                msg.push_str(&format!(
                    "\nheld-out ({} images): Recall@1 {:.4}, MAP@R {:.4}",
                    v.queries, v.recall_1, v.map_at_r
                ));
                if let Some(b) = &card.baselines {
                    msg.push('\n');
                    msg.push_str(&b.verdict(v));
                }
            }
            msg.push_str(&format!("\nmodel: {}", cfg.out.display()));
            print_line(&msg);
            Ok(ExitCode::SUCCESS)
        }
        crate::train::Outcome::Interrupted {
            epoch,
            step,
            budget,
        } => {
            let at = if budget {
                format!("step {step}")
            } else {
                format!("epoch {} step {step}", epoch + 1)
            };
            eprintln!("likeness: stopped at {at}; continue with the same command and --resume");
            Ok(ExitCode::from(130))
        }
    }
}

#[derive(serde::Serialize)]
struct InspectReport<'a> {
    source: &'a std::path::Path,
    kind: crate::data::SourceKind,
    items: usize,
    regions: usize,
    classes: Vec<(&'a str, usize)>,
    checked: bool,
}

fn inspect(args: InspectArgs) -> Result<ExitCode> {
    let ds = Dataset::open(&args.source)?;
    if args.check {
        check_all(&ds)?;
    }
    let counts = ds.class_counts();
    let report = InspectReport {
        source: ds.root(),
        kind: ds.kind(),
        items: ds.len(),
        regions: ds.region_count(),
        classes: ds
            .classes()
            .iter()
            .map(String::as_str)
            .zip(counts)
            .collect(),
        checked: args.check,
    };
    if args.json {
        print_line(&serde_json::to_string(&report).map_err(|e| Error::Invalid(e.to_string()))?);
    } else {
        let mut s = format!(
            "{}: {:?} source, {} items ({} regions), {} classes",
            report.source.display(),
            report.kind,
            report.items,
            report.regions,
            report.classes.len()
        );
        for (name, n) in &report.classes {
            s.push_str(&format!("\n  {n:>7}  {name}"));
        }
        if args.check {
            s.push_str("\nall images decoded");
        }
        print_line(&s);
    }
    Ok(ExitCode::SUCCESS)
}

/// Decodes every item in parallel chunks, with a progress bar on stderr.
fn check_all(ds: &Dataset) -> Result<()> {
    let bar = crate::progress::bar(ds.len() as u64, "decoding");
    let all: Vec<usize> = (0..ds.len()).collect();
    for chunk in all.chunks(512) {
        ds.load_many(chunk)?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(())
}

/// Prints to stdout; a closed pipe (`| head`) is not an error.
fn print_line(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{s}");
}
