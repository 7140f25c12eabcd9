//! The layers go one way (ARCHITECTURE.md): `plan` is pure — it imports no I/O crate and none of
//! the modules that do I/O — and nothing imports `controller` but the binary.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Lines of `dir`'s sources that mention any of `forbidden` (comments excluded).
fn offending(dir: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(!files.is_empty(), "{dir} has sources");
    let mut hits = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for f in forbidden {
                if code.contains(f) {
                    hits.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    hits
}

/// What the pure layers (`plan`, `model`) may not import: an I/O crate or a module that does I/O.
const IO_CRATES_AND_MODULES: &[&str] = &[
    "crate::store",
    "crate::stage",
    "crate::controller",
    "crate::tmdb",
    "crate::omdb",
    "crate::web",
    "crate::sim",
    "sqlx::",
    "reqwest::",
    "kube::",
    "tokio::",
    "hyper::",
    "axum::",
    "std::fs",
    "std::net",
    "std::process",
];

#[test]
fn plan_imports_no_io_crate_or_io_module() {
    let hits = offending("src/plan", IO_CRATES_AND_MODULES);
    assert!(
        hits.is_empty(),
        "plan/ must stay pure:\n{}",
        hits.join("\n")
    );
}

#[test]
fn only_the_binary_reaches_the_controller() {
    for dir in [
        "src/store",
        "src/stage",
        "src/plan",
        "src/tmdb",
        "src/omdb",
        "src/sim",
        "src/model",
        "src/web",
        "src/plugin",
    ] {
        let hits = offending(dir, &["crate::controller"]);
        assert!(
            hits.is_empty(),
            "{dir} imports the controller:\n{}",
            hits.join("\n")
        );
    }
}

#[test]
fn the_check_catches_an_offender() {
    // The scan itself must see an import: the controller does import the store.
    assert!(!offending("src/controller", &["crate::store"]).is_empty());
}

#[test]
fn the_store_writes_domain_records_not_the_clients_wire_types() {
    let hits = offending(
        "src/store",
        &["crate::tmdb", "crate::omdb", "crate::stage", "crate::web"],
    );
    assert!(
        hits.is_empty(),
        "store/ takes domain records from model/, not the clients' types:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_domain_records_need_no_io_and_no_client() {
    let hits = offending("src/model", IO_CRATES_AND_MODULES);
    assert!(
        hits.is_empty(),
        "model/ must stay pure:\n{}",
        hits.join("\n")
    );
}

#[test]
fn lib_rs_only_declares_modules() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("src/lib.rs");
    let code: Vec<&str> = lib
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .filter(|l| !(l.starts_with("pub mod ") && l.ends_with(';')))
        .collect();
    assert!(
        code.is_empty(),
        "src/lib.rs holds more than module declarations:\n{}",
        code.join("\n")
    );
}
