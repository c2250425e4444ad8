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
    /// Threads for torch's intra-op pool and rayon [default: all cores].
    #[arg(long, global = true, env = "LIKENESS_THREADS")]
    pub threads: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that this machine can run likeness: libtorch, CUDA, threads, data.
    Doctor(DoctorArgs),
    /// List a data source: kind, classes, counts, regions; --check decodes every image.
    Inspect(InspectArgs),
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
    let threads = runtime::init_threads(cli.global.threads)?;
    match cli.command {
        Command::Doctor(args) => doctor(cli.global.device, threads, args),
        Command::Inspect(args) => inspect(args),
    }
}

fn doctor(device: DeviceSpec, threads: usize, args: DoctorArgs) -> Result<ExitCode> {
    let report = crate::doctor::report(device, threads)?;
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
