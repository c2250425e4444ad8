//! `likeness-torch`: the half of the CLI that links libtorch (doctor, inspect,
//! train, and everything else). `likeness` execs it with the same arguments;
//! it accepts every command, so it can also be run directly.
use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    wait_politely();
    keep_large_buffers_on_the_heap();
    let cli = likeness_app::args::Cli::parse();
    match likeness::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("likeness: error: {:#}", anyhow::Error::from(e));
            ExitCode::from(2)
        }
    }
}

/// libtorch allocates each batch's activations afresh (tens of MB at batch
/// 256). With glibc's defaults such blocks are mmap'ed and unmapped every
/// time, and each new mapping is faulted in page by page: `perf` showed a
/// quarter of `likeness embed`'s time in the kernel. Serving them from the
/// heap and trimming it rarely made `embed` about 20% faster here (Fashion-MNIST
/// test set as PNG files, batch 256: 600-780 → 920-945 images/s).
fn keep_large_buffers_on_the_heap() {
    // SAFETY: mallopt only changes allocator tuning parameters; it is called
    // before any other thread exists, and glibc accepts any value for these
    // two (an unsupported call just returns 0).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Run directly (not through `likeness`, which sets it), this process
/// loaded libtorch's OpenMP before the setting of [`likeness_app::openmp`]
/// was in its environment: it runs itself again with it (about 0.3 s, the
/// load of libtorch). If that fails it carries on as it is.
fn wait_politely() {
    let Some((var, value)) = likeness_app::openmp::wait_setting() else {
        return;
    };
    let Ok(me) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| me.clone().into());
    let _ = std::process::Command::new(&me)
        .arg0(argv0)
        .args(args)
        .env(var, value)
        .exec();
}
