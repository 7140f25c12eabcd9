//! The committed CRDs in `crds/` are exactly what the Rust types generate (`tmdbsync crd`).

use kube::CustomResourceExt;
use tmdbsync::api::{SyncRun, TmdbSync};

const COMMITTED: &str = include_str!("../crds/tmdbsync.io.yaml");

#[test]
fn committed_crds_match_the_rust_types() {
    let generated = tmdbsync::api::crds_yaml();
    assert!(
        generated == COMMITTED,
        "crds/tmdbsync.io.yaml is stale: run `bash scripts/gen-crds.sh`"
    );
}

#[test]
fn crds_have_printer_columns_short_names_and_status_subresources() {
    let ts = TmdbSync::crd();
    let v = &ts.spec.versions[0];
    let cols: Vec<&str> = v
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        cols,
        [
            "Phase",
            "Progress",
            "Imported",
            "ETA",
            "Last-Bulk",
            "Last-Delta",
            "Age"
        ]
    );
    assert!(v.subresources.as_ref().unwrap().status.is_some());
    assert_eq!(
        ts.spec.names.short_names.as_deref(),
        Some(&["tmdb".to_string()][..])
    );

    let sr = SyncRun::crd();
    let v = &sr.spec.versions[0];
    let cols: Vec<&str> = v
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        cols,
        [
            "Sync", "Type", "Phase", "Pages", "Imported", "Skipped", "Errors", "Duration", "Age"
        ]
    );
    let yaml = serde_norway::to_string(&sr).unwrap();
    assert!(yaml.contains("self.from <= self.to"));
    assert!(yaml.contains("self == oldSelf"));
}
