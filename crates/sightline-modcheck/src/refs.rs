//! What each module refers to in its own crate: the paths of its `use`
//! items and the `crate::` / `self::` / `super::` paths written in its
//! code, resolved to the module they land in (following `use` re-exports,
//! so `crate::Thing` re-exported from `a` counts as a use of `a`).

use std::collections::HashMap;

use syn::visit::Visit;

use crate::tree::{Module, ModuleTree};

/// One module referring to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The module the reference is written in.
    pub from: Vec<String>,
    /// The module it lands in.
    pub to: Vec<String>,
    /// The path as written, and where.
    pub evidence: String,
}

/// A path written in a module, made absolute (from the crate root).
struct Written {
    path: Vec<String>,
    text: String,
}

/// Every reference between modules of the crate.
pub fn references(tree: &ModuleTree) -> Vec<Reference> {
    let mut aliases: HashMap<Vec<String>, HashMap<String, Vec<String>>> = HashMap::new();
    let mut written: Vec<(usize, Written)> = Vec::new();
    for (index, module) in tree.modules.iter().enumerate() {
        let mut collector = Collector {
            tree,
            module,
            written: Vec::new(),
            aliases: HashMap::new(),
        };
        for item in &module.items {
            collector.visit_item(item);
        }
        aliases.insert(module.path.clone(), collector.aliases);
        written.extend(collector.written.into_iter().map(|w| (index, w)));
    }
    written
        .into_iter()
        .map(|(index, w)| {
            let module = &tree.modules[index];
            Reference {
                from: module.path.clone(),
                to: resolve(tree, &aliases, w.path),
                evidence: format!("{}: {}", module.file.display(), w.text),
            }
        })
        .collect()
}

/// The module an absolute path lands in, following re-exports.
fn resolve(
    tree: &ModuleTree,
    aliases: &HashMap<Vec<String>, HashMap<String, Vec<String>>>,
    mut path: Vec<String>,
) -> Vec<String> {
    // Bounded: re-exports can (wrongly) point at each other.
    for _ in 0..32 {
        let n = tree.module_prefix(&path);
        if n == path.len() {
            return path;
        }
        let target = aliases
            .get(&path[..n])
            .and_then(|table| table.get(&path[n]))
            .filter(|target| **target != path[..=n]);
        match target {
            Some(target) => {
                let mut next = target.clone();
                next.extend_from_slice(&path[n + 1..]);
                path = next;
            }
            None => {
                path.truncate(n);
                return path;
            }
        }
    }
    let n = tree.module_prefix(&path);
    path.truncate(n);
    path
}

struct Collector<'a> {
    tree: &'a ModuleTree,
    module: &'a Module,
    written: Vec<Written>,
    /// Names this module brings in with `use`, and what they stand for.
    aliases: HashMap<String, Vec<String>>,
}

impl Collector<'_> {
    /// Makes a path written in this module absolute; `None` for a path
    /// that leaves the crate (or is a local name).
    fn absolute(&self, segments: &[String]) -> Option<Vec<String>> {
        let first = segments.first()?;
        let here = &self.module.path;
        let (mut base, rest) = match first.as_str() {
            "crate" => (Vec::new(), &segments[1..]),
            "self" => (here.clone(), &segments[1..]),
            "super" => {
                let mut base = here.clone();
                let mut rest = segments;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
                (base, rest)
            }
            name => {
                let mut child = here.clone();
                child.push(name.to_string());
                if self.tree.is_module(&child) {
                    (here.clone(), segments)
                } else {
                    return None;
                }
            }
        };
        base.extend(rest.iter().cloned());
        Some(base)
    }

    fn note(&mut self, segments: &[String], text: String) -> Option<Vec<String>> {
        let path = self.absolute(segments)?;
        self.written.push(Written {
            path: path.clone(),
            text,
        });
        Some(path)
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.use_leaf(prefix, &n.ident.to_string(), None),
            syn::UseTree::Rename(r) => {
                self.use_leaf(prefix, &r.ident.to_string(), Some(r.rename.to_string()))
            }
            syn::UseTree::Glob(_) => {
                let text = format!("use {}::*", prefix.join("::"));
                self.note(prefix, text);
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }

    fn use_leaf(&mut self, prefix: &[String], name: &str, rename: Option<String>) {
        let mut segments = prefix.to_vec();
        if name != "self" || segments.is_empty() {
            segments.push(name.to_string());
        }
        let text = format!("use {}", segments.join("::"));
        if let Some(path) = self.note(&segments, text) {
            let alias = rename.unwrap_or_else(|| segments.last().cloned().unwrap_or_default());
            if alias != "_" {
                self.aliases.insert(alias, path);
            }
        }
    }
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item_mod(&mut self, _: &'ast syn::ItemMod) {
        // A module inside a function body is not followed; inline modules
        // at module level are modules of their own in the tree.
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        if item.leading_colon.is_none() {
            self.use_tree(&mut Vec::new(), &item.tree);
        }
    }

    fn visit_attribute(&mut self, attr: &'ast syn::Attribute) {
        // actix's `#[rtype(result = "Type")]` names a type in a string.
        if attr.path().is_ident("rtype") {
            let mut types = Vec::new();
            let _ = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("result") {
                    let text: syn::LitStr = meta.value()?.parse()?;
                    types.push(text.parse::<syn::Type>()?);
                } else if meta.input.peek(syn::Token![=]) {
                    let _: syn::Expr = meta.value()?.parse()?;
                }
                Ok(())
            });
            for ty in &types {
                self.visit_type(ty);
            }
        }
        syn::visit::visit_attribute(self, attr);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() && path.segments.len() > 1 {
            let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
            let text = segments.join("::");
            self.note(&segments, text);
        }
        syn::visit::visit_path(self, path);
    }
}
