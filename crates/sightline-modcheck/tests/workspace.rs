//! Fails when any crate of the Sightline workspace has modules that depend
//! on each other, listing each cycle and the paths that make it.

use std::path::Path;

use sightline_modcheck::{check_crate, crate_roots, Disk};

#[test]
fn no_module_cycles_in_the_workspace() {
    // Where cargo runs this test from (the build may have been made in
    // another checkout sharing the target directory).
    let manifest = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let workspace = Path::new(&manifest).join("../..");
    let workspace = workspace.canonicalize().unwrap_or(workspace);
    let roots = crate_roots(&workspace).expect("the workspace lists");
    assert!(roots.len() > 10, "found only {roots:?}");
    let mut report = Vec::new();
    for root in &roots {
        let root = root.strip_prefix(&workspace).unwrap_or(root);
        let disk = Disk {
            base: workspace.clone(),
        };
        match check_crate(&disk, root) {
            Ok(cycles) => {
                for c in cycles {
                    report.push(format!("{}: {c}", root.display()));
                }
            }
            Err(e) => report.push(format!("{}: {e}", root.display())),
        }
    }
    assert!(
        report.is_empty(),
        "module cycles (break each with a Recipient back-reference or a shared module):\n{}",
        report.join("\n")
    );
}
