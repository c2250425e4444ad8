//! Every command's arguments (clap derive; doc comments are the help), one
//! file a command. The torch-free front binary parses them all, so `--help`
//! works everywhere and [`Command::needs_torch`] alone decides which binary
//! runs a command.

use clap::{Args, Parser, Subcommand};

use crate::settings::DeviceSpec;

mod add;
mod asymmetry;
mod build;
mod compact;
mod delete;
mod doctor;
mod embed;
mod eval;
mod graph;
mod index;
mod inspect;
mod photos;
mod query;
mod regions;
mod serve;
mod synth_swell;
mod train;
mod update;
mod verify;

pub use add::AddArgs;
pub use asymmetry::AsymmetryArgs;
pub use build::BuildArgs;
pub use compact::CompactArgs;
pub use delete::DeleteArgs;
pub use doctor::DoctorArgs;
pub use embed::{EmbedArgs, EmbedRunArgs};
pub use eval::EvalArgs;
pub use graph::{GraphArgs, MetricArg};
pub use index::IndexArgs;
pub use inspect::InspectArgs;
pub use photos::PhotoArgs;
pub use query::QueryArgs;
pub use regions::RegionsArgs;
pub use serve::ServeArgs;
pub use synth_swell::SwellArgs;
pub use train::TrainArgs;
pub use update::UpdateArgs;
pub use verify::VerifyArgs;

/// likeness: learn what looks alike from labelled images (faces, facial
/// regions), index a gallery, find the nearest matches fast.
#[derive(Debug, Parser)]
#[command(name = "likeness", version, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every command, listed apart from each command's own (they
/// were interleaved with them).
#[derive(Debug, Args)]
#[command(next_help_heading = "Machine options (every command)")]
pub struct GlobalArgs {
    /// Where torch runs: auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, global = true, default_value = "auto", env = "LIKENESS_DEVICE")]
    pub device: DeviceSpec,
    /// Threads for torch's intra-op pool and rayon [default: all cores; on
    /// CUDA torch gets 2, the loader all cores].
    #[arg(long, global = true, env = "LIKENESS_THREADS", value_parser = thread_count)]
    pub threads: Option<usize>,
    /// torch's intra-op threads only (overrides --threads).
    #[arg(long, global = true, env = "LIKENESS_TORCH_THREADS", value_parser = thread_count)]
    pub torch_threads: Option<usize>,
    /// rayon's threads only: decoding, augmentation, search (overrides --threads).
    #[arg(long, global = true, env = "LIKENESS_LOADER_THREADS", value_parser = thread_count)]
    pub loader_threads: Option<usize>,
}

pub use likeness_index::MAX_THREADS;

fn thread_count(s: &str) -> std::result::Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number of threads"))?;
    if (1..=MAX_THREADS).contains(&n) {
        Ok(n)
    } else {
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        Err(format!(
            "{n} threads: give 1..={MAX_THREADS} (this machine has {cores} cores)"
        ))
    }
}

/// Images per forward pass (`--batch` of `embed`, `index`, `eval`, `add`,
/// `asymmetry`, `--eval-batch` of `train`) when not given, on the CPU: 16
/// to 64 embedded as fast as 256 or faster, in a third to a fifth of the
/// memory (the demo's 540 regions with its EfficientNet-Lite0 at 160 px:
/// 3.6–4.2 s and 0.7–1.5 GB at 16–64, 9.5–12.1 s and 3.6 GB at 256;
/// docs/benchmarks.md).
pub const DEFAULT_BATCH_CPU: usize = 32;
/// The same on CUDA, where a larger batch keeps the GPU busy.
pub const DEFAULT_BATCH_CUDA: usize = 256;

/// `--batch` when not given, for the device that embeds.
pub fn default_batch(cuda: bool) -> usize {
    if cuda {
        DEFAULT_BATCH_CUDA
    } else {
        DEFAULT_BATCH_CPU
    }
}

/// `--batch`: a whole number of images, at least one.
fn batch_size(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "`{s}` is not a batch: give a whole number of images, at least 1"
        )),
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
    Build(BuildArgs),
    /// Find the k nearest items of each query vector in an index.
    Query(QueryArgs),
    /// Check every file of an index directory (sizes, CRC32s, graph links).
    Verify(VerifyArgs),
    /// Encode images with a trained model into vectors.npy (+ labels, items).
    Embed(EmbedArgs),
    /// Encode a gallery and build its index in one step.
    Index(IndexArgs),
    /// Retrieval metrics of an index: Recall@K, P@1, R-Precision, MAP@R, ANN agreement.
    Eval(EvalArgs),
    /// Answer queries over HTTP (JSON) from a memory-mapped index.
    Serve(ServeArgs),
    /// Write the SYNTHETIC graded facial regions set (swollen cheeks and
    /// under-eyes of the johns crops, known scores and sides); `make data` runs it.
    SynthSwell(SwellArgs),
    /// Left against right: for each subject with a left and a right region of
    /// one label, the distance between the left crop and the mirrored right
    /// crop (and, with --index, each side's predicted score).
    Asymmetry(AsymmetryArgs),
    /// Find the faces in photographs, place landmarks, and write a manifest
    /// of facial regions (eye, under-eye, cheek, each left and right; brow,
    /// nose, mouth) that `index`, `embed`, `eval` and `asymmetry` take.
    Regions(RegionsArgs),
    /// Add items to an index in place (vectors, or images embedded with the
    /// index's model); prints their ids. Small adds are logged, larger ones
    /// fold into the graph.
    Add(AddArgs),
    /// Delete items from an index (by id, ids file or label): never returned
    /// again; `compact` wipes them from the files.
    Delete(DeleteArgs),
    /// Change items' labels or scores (vectors untouched).
    Update(UpdateArgs),
    /// Fold every change into one clean graph over the live items.
    Compact(CompactArgs),
}

impl Command {
    /// Whether this command runs a network (libtorch), so the front binary
    /// hands it to `likeness-torch`: the one place that decides.
    pub fn needs_torch(&self) -> bool {
        match self {
            Command::Build(_)
            | Command::Verify(_)
            | Command::Delete(_)
            | Command::Update(_)
            | Command::Compact(_) => false,
            Command::Add(a) => a.data.is_some(),
            Command::Query(q) => q.needs_torch(),
            Command::Serve(s) => s.wants_model(),
            Command::Doctor(_)
            | Command::Inspect(_)
            | Command::Train(_)
            | Command::Embed(_)
            | Command::Index(_)
            | Command::Eval(_)
            | Command::SynthSwell(_)
            | Command::Asymmetry(_)
            | Command::Regions(_) => true,
        }
    }
}

#[cfg(test)]
mod batch_tests {
    use clap::CommandFactory;

    /// The help's "32 on the CPU, 256 on CUDA" is written in each command's
    /// doc comment: it must say the constants' values.
    #[test]
    fn the_batch_help_says_the_defaults() {
        let want = format!(
            "{} on the CPU, {} on CUDA",
            super::DEFAULT_BATCH_CPU,
            super::DEFAULT_BATCH_CUDA
        );
        let mut cli = super::Cli::command();
        for (cmd, flag) in [
            ("embed", "batch"),
            ("index", "batch"),
            ("eval", "batch"),
            ("add", "batch"),
            ("asymmetry", "batch"),
            ("train", "eval_batch"),
        ] {
            let sub = cli.find_subcommand_mut(cmd).unwrap();
            let arg = sub
                .get_arguments()
                .find(|a| a.get_id() == flag)
                .unwrap_or_else(|| panic!("{cmd} --{flag}"));
            let help = arg.get_help().unwrap().to_string().replace('\n', " ");
            assert!(help.contains(&want), "{cmd} --{flag}: {help}");
        }
    }
}
