//! `likeness serve`: arguments to server settings, the model an index
//! records (when the torch half lends a loader), then the server.
use std::process::ExitCode;

use likeness_index::Index;

use crate::args::ServeArgs;
use crate::embedder::{ImageEmbedder, ModelLoader};
use crate::error::{Error, Result};
use crate::serve::{PageOptions, ServeOptions};

pub fn run(threads: usize, args: ServeArgs, models: Option<&dyn ModelLoader>) -> Result<ExitCode> {
    let opts = options(&args, threads)?;
    let embedder: Option<std::sync::Arc<dyn ImageEmbedder>> = match models {
        Some(models) if !args.no_model => {
            let index = Index::open(&args.index)?;
            match models.load(&index, args.model.as_deref()) {
                Ok(m) => {
                    eprintln!(
                        "likeness serve: image queries use the model in {}",
                        m.dir.display()
                    );
                    Some(m.embedder)
                }
                Err(e) if args.model.is_some() => return Err(e),
                Err(e) => {
                    eprintln!("likeness serve: serving vectors only: {e}");
                    None
                }
            }
        }
        _ => None,
    };
    crate::serve::run(&args.index, embedder, &opts)?;
    Ok(ExitCode::SUCCESS)
}

/// The server settings `args` ask for.
fn options(args: &ServeArgs, threads: usize) -> Result<ServeOptions> {
    if args.max_body_mb == 0 {
        return Err(Error::Usage("--max-body-mb must be at least 1".into()));
    }
    if !(args.batch_wait_ms.is_finite() && (0.0..=10_000.0).contains(&args.batch_wait_ms)) {
        return Err(Error::Usage(format!(
            "--batch-wait-ms {} must be between 0 and 10000",
            args.batch_wait_ms
        )));
    }
    if args.max_batch == 0 {
        return Err(Error::Usage(
            "--max-batch must be at least 1 (1: no batching)".into(),
        ));
    }
    Ok(ServeOptions {
        addr: args.addr,
        page: PageOptions {
            admin_token: args.admin_token.clone(),
            eval_dir: args.eval_dir.clone(),
            model_dir: args.model.clone(),
            thumb_cache_bytes: args.thumb_cache_mb << 20,
            limits: args.photos.limits(),
        },
        workers: args.workers.unwrap_or(threads).max(1),
        max_body: args.max_body_mb << 20,
        batch_wait: std::time::Duration::from_secs_f64(args.batch_wait_ms / 1e3),
        max_batch: args.max_batch,
        no_model: args.no_model,
        limits: args.photos.limits(),
    })
}
