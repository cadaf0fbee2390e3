//! Temporary directories for the tests: `tempfile`'s, named so that a leftover one says which
//! test made it.

use std::path::Path;

/// A fresh directory, removed when dropped.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("tollgate-{name}-"))
            .tempdir()
            .expect("create a temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}
