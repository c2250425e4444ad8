//! The commands that run a network, one file each: their bodies turn the
//! arguments (`likeness_app::args`) into settings and call this crate's
//! trainer and embedder. The torch-free commands are `likeness_app`'s.
pub mod add;
pub mod asymmetry;
pub mod doctor;
pub mod embed;
pub mod eval;
pub mod index;
pub mod inspect;
pub mod regions;
pub mod synth_swell;
pub mod train;
