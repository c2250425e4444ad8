//! likeness-app: the torch-free application over the `likeness-index`
//! engine. It parses every command's arguments, runs the commands that need
//! no network (`build`, `query`, `verify`, `serve`), serves the page, and
//! holds the readers both halves share. The `likeness` front binary links
//! only this crate; `likeness-torch` links it and the trainer.
//!
//! | module | what |
//! |---|---|
//! | [`args`] | every command's clap arguments, [`args::Command::needs_torch`] |
//! | [`cli`] | runs a parsed torch-free command |
//! | [`commands`] | `build`, `query`, `verify`, `serve`, and the changes `add`, `delete`, `update`, `compact`: one file each |
//! | [`query_output`] | what `query` prints: tables, ids, JSON Lines, its measurements |
//! | [`serve`] | the HTTP server, its page, thumbnails and guard |
//! | [`face`] | faces in photos: detector, landmarks, regions from them |
//! | [`cache`] | where downloads live (`$LIKENESS_CACHE`) |
//! | [`embedder`] | the traits through which the torch half lends a network |
//! | [`read`] | image decoding with limits, IDX files, items' images, regions |
//! | [`montage`] | queries beside their results, as a picture |
//! | [`plot`] | PNG charts: training curves, eval bars, score scatter |
//! | [`model_card`] | a typed summary of a model folder's `model.json` |
//! | [`settings`] | the plain values arguments name (device, architecture, loss, ...) |
//! | [`shard`] | `--shard i/N`: contiguous ranges of items |
//! | [`progress`] | progress bars on stderr |
//! | [`stdout`] | lines on stdout; a closed pipe (`\| head`) ends them quietly |
//! | [`plural`] | counts in messages: `1 photo`, `2 photos` |
pub mod args;
pub mod cache;
pub mod cli;
pub mod commands;
pub mod embedder;
pub mod error;
pub mod face;
pub mod model_card;
pub mod montage;
pub mod openmp;
pub mod plot;
pub mod plural;
pub mod progress;
pub mod query_output;
pub mod read;
pub mod serve;
pub mod settings;
pub mod shard;
pub mod stdout;

pub use error::{Error, Result};
