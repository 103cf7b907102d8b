//! The module tree of one crate, read from its root file: every `mod x;`
//! followed to `x.rs` or `x/mod.rs`, and every inline `mod x { .. }`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::ModcheckError;

/// Where the checker reads source files from: the disk, or (in the
/// checker's own tests) a set of files held in memory.
pub trait Sources {
    /// The text of `path`, or why it cannot be had.
    fn read(&self, path: &Path) -> Result<String, String>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> bool;
}

/// Files on disk, named relative to a base folder (the workspace), so
/// that reports name them the same way on every machine.
pub struct Disk {
    pub base: PathBuf,
}

impl Sources for Disk {
    fn read(&self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(self.base.join(path)).map_err(|e| e.to_string())
    }
    fn exists(&self, path: &Path) -> bool {
        self.base.join(path).is_file()
    }
}

/// One module: its path from the crate root (empty for the root), the
/// file it is written in, and its own items (not those of inline child
/// modules, which are modules of their own).
pub struct Module {
    pub path: Vec<String>,
    pub file: PathBuf,
    pub items: Vec<syn::Item>,
}

/// Every module of one crate; the root first.
pub struct ModuleTree {
    pub modules: Vec<Module>,
    known: HashSet<Vec<String>>,
}

impl ModuleTree {
    /// Reads the crate whose root file (`lib.rs`, `main.rs`, a test file)
    /// is `root`.
    pub fn load(sources: &dyn Sources, root: &Path) -> Result<ModuleTree, ModcheckError> {
        let mut tree = ModuleTree {
            modules: Vec::new(),
            known: HashSet::new(),
        };
        let dir = root.parent().unwrap_or(Path::new("")).to_path_buf();
        let items = parse(sources, root)?;
        tree.add(sources, Vec::new(), root.to_path_buf(), &dir, items)?;
        Ok(tree)
    }

    /// Whether `path` names a module of this crate.
    pub fn is_module(&self, path: &[String]) -> bool {
        self.known.contains(path)
    }

    /// The longest leading part of `path` that names a module.
    pub fn module_prefix(&self, path: &[String]) -> usize {
        (0..=path.len())
            .rev()
            .find(|&n| self.is_module(&path[..n]))
            .unwrap_or(0)
    }

    /// Adds a module whose children's files live in `dir`.
    fn add(
        &mut self,
        sources: &dyn Sources,
        path: Vec<String>,
        file: PathBuf,
        dir: &Path,
        items: Vec<syn::Item>,
    ) -> Result<(), ModcheckError> {
        self.known.insert(path.clone());
        let mut own = Vec::with_capacity(items.len());
        let mut children = Vec::new();
        for item in items {
            match item {
                syn::Item::Mod(m) => children.push(m),
                other => own.push(other),
            }
        }
        self.modules.push(Module {
            path: path.clone(),
            file: file.clone(),
            items: own,
        });
        for child in children {
            let name = child.ident.to_string();
            let mut child_path = path.clone();
            child_path.push(name.clone());
            let child_dir = dir.join(&name);
            match child.content {
                Some((_, items)) => {
                    self.add(sources, child_path, file.clone(), &child_dir, items)?
                }
                None => {
                    let flat = dir.join(format!("{name}.rs"));
                    let nested = child_dir.join("mod.rs");
                    let child_file = if sources.exists(&flat) {
                        flat
                    } else if sources.exists(&nested) {
                        nested
                    } else {
                        return Err(ModcheckError::MissingModule {
                            module: child_path.join("::"),
                            declared_in: file.clone(),
                            tried: format!("{} or {}", flat.display(), nested.display()),
                        });
                    };
                    let items = parse(sources, &child_file)?;
                    self.add(sources, child_path, child_file, &child_dir, items)?;
                }
            }
        }
        Ok(())
    }
}

fn parse(sources: &dyn Sources, path: &Path) -> Result<Vec<syn::Item>, ModcheckError> {
    let text = sources.read(path).map_err(|reason| ModcheckError::Read {
        path: path.to_path_buf(),
        reason,
    })?;
    let file = syn::parse_file(&text).map_err(|e| ModcheckError::Parse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(file.items)
}
