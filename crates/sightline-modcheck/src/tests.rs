//! The checker on small made-up crates held in memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{check_crate, Cycle, Sources};

struct Memory(BTreeMap<PathBuf, &'static str>);

impl Sources for Memory {
    fn read(&self, path: &Path) -> Result<String, String> {
        self.0
            .get(path)
            .map(|s| s.to_string())
            .ok_or_else(|| "no such file".to_string())
    }
    fn exists(&self, path: &Path) -> bool {
        self.0.contains_key(path)
    }
}

fn check(files: &[(&str, &'static str)]) -> Vec<Cycle> {
    let sources = Memory(files.iter().map(|(p, s)| (PathBuf::from(p), *s)).collect());
    check_crate(&sources, Path::new("src/lib.rs")).expect("the made-up crate reads")
}

fn names(cycles: &[Cycle]) -> Vec<String> {
    cycles
        .iter()
        .map(|c| {
            let mut p = c.parent.clone();
            p.push(c.modules.join(","));
            p.join("::")
        })
        .collect()
}

#[test]
fn a_tree_without_cycles_passes() {
    let cycles = check(&[
        ("src/lib.rs", "pub mod a; pub mod b; pub mod shared;"),
        (
            "src/a.rs",
            "use crate::shared::Role; use actix::Recipient; pub struct A(Recipient<crate::b::Reply>);",
        ),
        ("src/b.rs", "use crate::shared::Role; pub struct Reply;"),
        ("src/shared.rs", "pub enum Role { X }"),
    ]);
    assert!(cycles.is_empty(), "{cycles:?}");
}

#[test]
fn a_cycle_through_use_items_is_found() {
    let cycles = check(&[
        ("src/lib.rs", "pub mod health; pub mod session;"),
        ("src/health.rs", "use crate::session::UserSession;"),
        ("src/session/mod.rs", "mod apps; pub struct UserSession;"),
        (
            "src/session/apps.rs",
            "use crate::health::{Activity, Watch};",
        ),
    ]);
    assert_eq!(names(&cycles), ["health,session"]);
    let report = cycles[0].to_string();
    assert!(
        report.contains("src/health.rs: use crate::session::UserSession"),
        "{report}"
    );
    assert!(
        report.contains("src/session/apps.rs: use crate::health::Activity"),
        "{report}"
    );
}

#[test]
fn a_cycle_through_a_path_in_code_and_a_re_export_is_found() {
    let cycles = check(&[
        ("src/lib.rs", "pub mod a; pub mod b; pub use b::Thing;"),
        ("src/a.rs", "pub fn f() -> crate::Thing { todo!() }"),
        ("src/b.rs", "pub struct Thing; fn g() { super::a::f(); }"),
    ]);
    assert_eq!(names(&cycles), ["a,b"]);
}

#[test]
fn a_cycle_through_an_actix_result_type_is_found() {
    let cycles = check(&[
        ("src/lib.rs", "pub mod a; pub mod b;"),
        (
            "src/a.rs",
            "#[derive(Message)] #[rtype(result = \"Option<crate::b::B>\")] pub struct Ask;",
        ),
        ("src/b.rs", "pub struct B; fn f(_: super::a::Ask) {}"),
    ]);
    assert_eq!(names(&cycles), ["a,b"]);
}

#[test]
fn a_cycle_between_files_of_one_module_directory_is_found() {
    let cycles = check(&[
        ("src/lib.rs", "pub mod session;"),
        (
            "src/session/mod.rs",
            "mod apps; mod routing; mod glasses; pub struct S;",
        ),
        (
            "src/session/apps.rs",
            "use super::routing::route; use super::S;",
        ),
        (
            "src/session/routing.rs",
            "use super::glasses::g; pub fn route() {}",
        ),
        (
            "src/session/glasses.rs",
            "pub fn g() { self::inner(); crate::session::apps::x(); } fn inner() {}",
        ),
    ]);
    assert_eq!(names(&cycles), ["session::apps,routing,glasses"]);
    assert_eq!(cycles[0].evidence.len(), 3);
}

#[test]
fn parents_children_and_inline_tests_modules_are_not_cycles() {
    let cycles = check(&[
        (
            "src/lib.rs",
            "pub mod a; pub use a::A; fn root() -> A { a::A }",
        ),
        (
            "src/a.rs",
            "pub struct A; use crate::A as Again; mod tests { use super::*; }",
        ),
    ]);
    assert!(cycles.is_empty(), "{cycles:?}");
}

#[test]
fn a_missing_module_file_is_an_error() {
    let sources = Memory(BTreeMap::from([(PathBuf::from("src/lib.rs"), "mod gone;")]));
    let err = check_crate(&sources, Path::new("src/lib.rs")).unwrap_err();
    assert!(err.to_string().contains("gone"), "{err}");
}
