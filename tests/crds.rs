//! The committed CRDs in `crds/` are exactly what the Rust types generate (`tmdbsync crd`), and they
//! describe themselves: every property has a description, both kinds share a category, times say
//! `format: date-time`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::Value;
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
            "Ready",
            "Reason",
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
            "Sync", "Type", "Phase", "Reason", "Pages", "Imported", "Skipped", "Errors",
            "Duration", "Age"
        ]
    );
    let yaml = serde_norway::to_string(&sr).unwrap();
    assert!(yaml.contains("self.from <= self.to"));
    assert!(yaml.contains("self == oldSelf"));
}

/// The CRD's `openAPIV3Schema` as JSON.
fn schema(crd: &CustomResourceDefinition) -> Value {
    let version = &crd.spec.versions[0];
    serde_json::to_value(&version.schema.as_ref().unwrap().open_api_v3_schema).unwrap()
}

/// Calls `visit(path, property)` for every property under `node`, through objects, array items
/// and map values.
fn walk(node: &Value, path: &str, visit: &mut impl FnMut(&str, &Value)) {
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            let p = format!("{path}.{name}");
            visit(&p, prop);
            walk(prop, &p, visit);
        }
    }
    if let Some(items) = node.get("items") {
        walk(items, &format!("{path}[]"), visit);
    }
    if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
        walk(values, &format!("{path}{{}}"), visit);
    }
}

/// The paths of properties without a description (empty counts as none).
fn undescribed(schema: &Value) -> Vec<String> {
    let mut missing = Vec::new();
    walk(schema, "", &mut |path, prop| {
        let text = prop
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("");
        if text.trim().is_empty() {
            missing.push(path.to_string());
        }
    });
    missing
}

#[test]
fn every_property_of_both_crds_has_a_description() {
    for crd in [TmdbSync::crd(), SyncRun::crd()] {
        let kind = &crd.spec.names.kind;
        let schema = schema(&crd);
        let root = schema["description"].as_str().unwrap_or("");
        assert!(
            root.len() > 40 && !root.contains("Auto-generated"),
            "{kind}: the root needs a description written for users: {root:?}"
        );
        let mut count = 0;
        walk(&schema, "", &mut |_, _| count += 1);
        assert!(count > 40, "{kind}: the walk saw only {count} properties");
        assert_eq!(
            undescribed(&schema),
            Vec::<String>::new(),
            "{kind}: properties without a description (add a /// doc comment)"
        );
    }
}

#[test]
fn the_description_check_finds_a_property_without_one() {
    let schema = serde_json::json!({"description": "root", "properties": {
    "spec": {"description": "s", "properties": {
        "a": {"description": "a"},
        "list": {"description": "l", "items": {"properties": {"b": {"type": "string"}}}},
        "map": {"description": "m", "additionalProperties": {"properties": {"c": {"description": " "}}}}
    }}}});
    assert_eq!(undescribed(&schema), [".spec.list[].b", ".spec.map{}.c"]);
}

#[test]
fn both_kinds_share_a_category_that_is_no_resource_name() {
    let crds = [TmdbSync::crd(), SyncRun::crd()];
    let names: Vec<String> = crds
        .iter()
        .flat_map(|c| {
            let n = &c.spec.names;
            let mut all = vec![n.plural.clone(), n.kind.to_lowercase()];
            all.extend(n.singular.clone());
            all.extend(n.short_names.clone().unwrap_or_default());
            all
        })
        .collect();
    for crd in &crds {
        let categories = crd.spec.names.categories.clone().unwrap_or_default();
        assert_eq!(categories, ["tmdb-all"], "{}", crd.spec.names.kind);
        for c in &categories {
            // kubectl expands a category before a name: `kubectl get <category> NAME` would then
            // look NAME up in every kind of the category.
            assert!(
                !names.contains(c),
                "category {c} equals a resource name: {names:?}"
            );
        }
    }
    assert_eq!(
        SyncRun::crd().spec.names.short_names.as_deref(),
        Some(&["tmdbrun".to_string()][..]),
        "a short name unlikely to collide with other CRDs (not `sr`)"
    );
}

#[test]
fn times_are_date_time_strings() {
    let ts = schema(&TmdbSync::crd());
    let sr = schema(&SyncRun::crd());
    let status = |s: &Value| s["properties"]["status"]["properties"].clone();
    let (ts, sr) = (status(&ts), status(&sr));
    let mut times = vec![
        sr["startedAt"].clone(),
        sr["completedAt"].clone(),
        ts["lastRuns"]["properties"]["bulk"]["properties"]["completedAt"].clone(),
    ];
    for group in ["nextRuns", "lastScheduleTimes"] {
        for t in ["catalog", "bulk", "delta", "enrich"] {
            times.push(ts[group]["properties"][t].clone());
        }
    }
    for t in &times {
        assert_eq!(t["type"], "string", "{t}");
        assert_eq!(t["format"], "date-time", "{t}");
    }
    assert_eq!(
        ts["progress"]["properties"]["estimatedCompletion"]["format"],
        "date"
    );
    let conditions = &sr["conditions"]["items"]["properties"]["lastTransitionTime"];
    assert_eq!(conditions["format"], "date-time");
}
