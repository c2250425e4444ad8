//! `likeness serve`: answer queries over HTTP from a memory-mapped index.
use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Index directory to serve.
    #[arg(long)]
    pub index: PathBuf,
    /// Model for POST /search/image [default: the one recorded in the index, if it loads].
    #[arg(long, conflicts_with = "no_model")]
    pub model: Option<PathBuf>,
    /// Serve vectors only, even if the index records a model.
    #[arg(long)]
    pub no_model: bool,
    /// Address to listen on (port 0: any free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub addr: std::net::SocketAddr,
    /// Search threads [default: all cores].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Largest request body in MB.
    #[arg(long, default_value_t = 16)]
    pub max_body_mb: usize,
    /// Image queries: how long the first image waits for others to share
    /// its forward pass, in ms (measured: `make bench-serve`).
    #[arg(long, default_value_t = 2.0)]
    pub batch_wait_ms: f64,
    /// Image queries: most images in one forward pass (1: no batching).
    #[arg(long, default_value_t = 32)]
    pub max_batch: usize,
    /// Secret that POST /admin/* must send (`Authorization: Bearer SECRET`);
    /// required when --addr is not loopback.
    #[arg(long, env = "LIKENESS_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Folder of the eval.json (and eval.png) the page shows [default: the
    /// index folder, else INDEX-eval beside it, where `likeness eval` writes].
    #[arg(long = "eval", value_name = "DIR")]
    pub eval_dir: Option<PathBuf>,
    #[command(flatten)]
    pub photos: super::PhotoArgs,
    /// Memory for the page's thumbnails, MB.
    #[arg(long, default_value_t = 64)]
    pub thumb_cache_mb: usize,
}

impl ServeArgs {
    /// Whether serving needs the network: an explicit --model, or a model
    /// recorded in the index that exists on disk (unless --no-model).
    pub fn wants_model(&self) -> bool {
        if self.no_model {
            return false;
        }
        self.model.is_some()
            || likeness_index::Manifest::read(&self.index)
                .ok()
                .and_then(|m| m.model_dir)
                .is_some_and(|d| {
                    std::path::Path::new(&d)
                        .join(crate::model_card::MODEL_CARD)
                        .is_file()
                })
    }
}
