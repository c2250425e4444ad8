//! Lines on stdout, for the commands and the examples. A reader that stops
//! early (`likeness eval ... | head -1`) closes the pipe, and `println!`
//! then panics ("failed printing to stdout: Broken pipe", exit 101). Here a
//! closed pipe ends the output quietly and the command goes on to exit 0,
//! as ripgrep does; any other failure to write (a full disk behind `>`) is
//! an error that names stdout.
use std::io::Write;

use crate::error::{Error, Result};

/// Writes `s` and a newline to stdout, at once.
pub fn line(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    closed_pipe_ok(writeln!(out, "{s}").and_then(|()| out.flush()))
}

/// The outcome of writing to stdout, a closed pipe counted as success.
pub fn closed_pipe_ok(res: std::io::Result<()>) -> Result<()> {
    match res {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::io("<stdout>", e)),
        _ => Ok(()),
    }
}

/// `println!` through [`line`]: `likeness_app::outln!("{n} items")?`.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::stdout::line(&::std::format!($($arg)*))
    };
}
