//! The commands this crate runs, one file each: their bodies turn arguments
//! into settings and call the engine. Commands that run a network live in
//! the `likeness` crate's `commands/`.
pub mod add;
pub mod build;
pub mod compact;
pub mod delete;
pub mod query;
pub mod serve;
pub mod update;
pub mod verify;
