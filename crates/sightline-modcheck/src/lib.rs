//! The module check: finds dependency cycles between the modules of a
//! crate.
//!
//! Each crate of the workspace is read from its root files (`src/lib.rs`,
//! `src/main.rs`, `src/bin/*.rs`, `tests/*.rs`, `fuzz/fuzz_targets/*.rs`)
//! with `syn`. For every
//! module, the paths it names inside its own crate — in `use` items, and
//! `crate::` / `self::` / `super::` paths in its code — are resolved to the
//! module they land in (following re-exports), and each is counted as a
//! dependency between the two sibling modules it crosses (top-level
//! modules, or the files of one module directory such as `session/*`).
//! Modules that depend on each other, directly or round a loop, are a
//! cycle. `tests/workspace.rs` runs the check over the whole workspace as
//! part of `cargo test --workspace`, and fails listing each cycle with the
//! paths that make it.
//!
//! An actor that must answer the actor that drives it holds a `Recipient`
//! of the message it sends back, and plain data both sides need lives in a
//! module of its own: neither needs to import the other.

pub mod error;
pub mod graph;
pub mod refs;
pub mod tree;

use std::path::{Path, PathBuf};

pub use error::ModcheckError;
pub use graph::Cycle;
pub use tree::{Disk, Sources};

/// The cycles between modules of the crate whose root file is `root`.
pub fn check_crate(sources: &dyn Sources, root: &Path) -> Result<Vec<Cycle>, ModcheckError> {
    let tree = tree::ModuleTree::load(sources, root)?;
    Ok(graph::cycles(&refs::references(&tree)))
}

/// The root files of every crate in the workspace at `workspace`: the
/// root package's and each `crates/*` package's library, binaries and
/// integration tests.
pub fn crate_roots(workspace: &Path) -> Result<Vec<PathBuf>, ModcheckError> {
    let mut packages = vec![workspace.to_path_buf()];
    packages.extend(
        list(&workspace.join("crates"))?
            .into_iter()
            .filter(|p| p.is_dir()),
    );
    let mut roots = Vec::new();
    for package in packages {
        for root in ["src/lib.rs", "src/main.rs"] {
            let file = package.join(root);
            if file.is_file() {
                roots.push(file);
            }
        }
        for dir in ["src/bin", "tests", "fuzz_targets"] {
            let dir = package.join(dir);
            if dir.is_dir() {
                roots.extend(
                    list(&dir)?
                        .into_iter()
                        .filter(|f| f.extension().is_some_and(|e| e == "rs")),
                );
            }
        }
    }
    Ok(roots)
}

fn list(dir: &Path) -> Result<Vec<PathBuf>, ModcheckError> {
    let read = |e: std::io::Error| ModcheckError::Read {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        entries.push(entry.map_err(read)?.path());
    }
    entries.sort();
    Ok(entries)
}

#[cfg(test)]
mod tests;
