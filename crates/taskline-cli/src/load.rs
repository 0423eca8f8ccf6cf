//! Reading a trace file with clear errors.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use taskline_trace::{Recording, read_trace};

use crate::error::CliError;

/// Largest trace file the command reads (the whole file is held in memory).
pub const MAX_TRACE_BYTES: u64 = 4 << 30;

/// A trace read from disk.
pub struct Loaded {
    /// The decoded recording.
    pub recording: Recording,
    /// File size in bytes.
    pub bytes: u64,
}

/// Read and decode `path`.
pub fn load(path: &Path) -> Result<Loaded, CliError> {
    let shown = path.display();
    let file = File::open(path).map_err(|e| CliError::new(format!("cannot open {shown}: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| CliError::new(format!("cannot read {shown}: {e}")))?;
    if meta.is_dir() {
        return Err(CliError::new(format!(
            "{shown} is a directory, not a trace file"
        )));
    }
    if meta.len() > MAX_TRACE_BYTES {
        return Err(CliError::new(format!(
            "{shown} is {} bytes, more than the {} bytes taskline reads",
            meta.len(),
            MAX_TRACE_BYTES
        )));
    }
    if meta.len() == 0 {
        return Err(CliError::new(format!("{shown} is empty, not a trace file")));
    }
    let mut bytes = Vec::new();
    file.take(MAX_TRACE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::new(format!("cannot read {shown}: {e}")))?;
    let recording = read_trace(&bytes)
        .map_err(|e| CliError::new(format!("{shown} is not a valid taskline trace: {e}")))?;
    if recording.unfinished {
        eprintln!(
            "warning: {shown} has no end marker (the process crashed or was killed, or the file \
             was cut): showing the {} events read up to its last whole packet; the recorder's \
             drop count is unknown",
            recording.events.len()
        );
    }
    Ok(Loaded {
        recording,
        bytes: bytes.len() as u64,
    })
}
