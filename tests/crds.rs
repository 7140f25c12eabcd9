//! The committed CRDs in `crds/` are exactly what the Rust types generate (`tmdbsync crd`).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
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

/// The names of the printer columns of the CRD's first version.
fn printer_columns(crd: &CustomResourceDefinition) -> Vec<&str> {
    crd.spec.versions[0]
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.name.as_str())
        .collect()
}

#[test]
fn crds_have_printer_columns_short_names_and_status_subresources() {
    let ts = TmdbSync::crd();
    assert_eq!(
        printer_columns(&ts),
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
    assert!(
        ts.spec.versions[0]
            .subresources
            .as_ref()
            .unwrap()
            .status
            .is_some()
    );
    assert_eq!(
        ts.spec.names.short_names.as_deref(),
        Some(&["tmdb".to_string()][..])
    );

    let sr = SyncRun::crd();
    assert_eq!(
        printer_columns(&sr),
        [
            "Sync", "Type", "Phase", "Pages", "Imported", "Skipped", "Errors", "Duration", "Age"
        ]
    );
    let yaml = serde_norway::to_string(&sr).unwrap();
    assert!(yaml.contains("self.from <= self.to"));
    assert!(yaml.contains("self == oldSelf"));
}
