//! [`write_atomically`]: a file appears whole or not at all.
//!
//! Flight-recorder dumps and converted traces are written to a temporary
//! file in the target's directory, synced, then renamed over the target, so
//! a reader (or a crash mid-write) never sees half a file.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes the temporary files of concurrent writes in one process.
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// Writes `path` through `write`, atomically: into a temporary file next to
/// it (`.<name>.<pid>-<n>.tmp`), fsynced, renamed over `path`, then the
/// directory synced where the platform allows. Creates the directory if
/// needed. On error the temporary file is removed and `path` is untouched.
///
/// ```
/// use std::io::Write;
/// let path = std::env::temp_dir().join(format!("taskline-doc-{}.txt", std::process::id()));
/// let n = taskline_trace::write_atomically(&path, |out| out.write_all(b"whole").map(|()| 5))?;
/// assert_eq!((n, std::fs::read(&path)?), (5, b"whole".to_vec()));
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_atomically<R>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<R>,
) -> io::Result<R> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        NEXT_TMP.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut out = BufWriter::new(File::create(&tmp)?);
        let value = write(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        // Make the rename durable; not every platform can open a directory.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(value)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
