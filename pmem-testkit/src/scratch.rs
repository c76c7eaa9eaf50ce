//! Scratch directories for the integration tests of every crate in the
//! workspace.

use std::path::Path;

use tempfile::TempDir;

/// A fresh directory for pool files, in `/dev/shm` when it exists (memory,
/// like persistent memory, and no disk writes), else in the temp directory.
#[must_use]
pub fn scratch(prefix: &str) -> TempDir {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    if Path::new("/dev/shm").is_dir()
        && let Ok(dir) = builder.tempdir_in("/dev/shm")
    {
        return dir;
    }
    builder.tempdir().expect("create a temporary directory")
}
