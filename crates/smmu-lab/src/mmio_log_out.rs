//! `--mmio-log FILE` (run, replay): where a run's MMIO log goes (format: docs/mmio-log.md).
//!
//! The path is checked before the run, so a bad one is an error (exit 2) before anything runs;
//! the log is written to a temporary file beside it and renamed into place, so a failure never
//! leaves a half-written log.

use std::path::{Path, PathBuf};

/// A checked `--mmio-log` destination.
#[derive(Debug, Clone)]
pub struct MmioLogOut(PathBuf);

impl MmioLogOut {
    /// Check that `path` names a file that can be created: its directory exists and it is not
    /// itself a directory.
    pub fn check(path: &Path) -> Result<MmioLogOut, String> {
        let bad = |why: &str| format!("--mmio-log {}: {why}", path.display());
        if path.as_os_str().is_empty() {
            return Err(bad("empty path"));
        }
        if path.is_dir() {
            return Err(bad("is a directory"));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(bad(&format!("directory {} does not exist", dir.display())));
        }
        Ok(MmioLogOut(path.to_path_buf()))
    }

    /// Write the log: all of it, or nothing.
    pub fn write(&self, text: &str) -> Result<(), String> {
        let path = &self.0;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".partial");
        let tmp = PathBuf::from(tmp);
        let fail = |e: std::io::Error| {
            let _ = std::fs::remove_file(&tmp);
            format!("--mmio-log {}: {e}", path.display())
        };
        std::fs::write(&tmp, text).map_err(fail)?;
        std::fs::rename(&tmp, path).map_err(fail)
    }
}
