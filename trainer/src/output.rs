//! What the commands print for other programs: one JSON value per line on standard output.

use std::io::{ErrorKind, StdoutLock, Write};

use anyhow::Result;
use serde::Serialize;

/// JSON lines on standard output that end quietly when the reader goes away (`| head`),
/// instead of a panic on the closed pipe.
pub struct JsonLines {
    out: StdoutLock<'static>,
}

impl JsonLines {
    pub fn stdout() -> Self {
        Self { out: std::io::stdout().lock() }
    }

    /// Write `value` as one line; `false` once the reader has closed the pipe.
    pub fn write(&mut self, value: &impl Serialize) -> Result<bool> {
        let mut line = serde_json::to_vec(value)?;
        line.push(b'\n');
        match self.out.write_all(&line).and_then(|()| self.out.flush()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
