//! Server-side apply, the way the controller writes its own objects: under [`FIELD_MANAGER`],
//! forced, with `apiVersion` and `kind` in the body.

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::core::NamespaceResourceScope;
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::api::FIELD_MANAGER;

/// Which part of an object an apply writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `metadata` (labels, owner references; the fields given must include `name`).
    Metadata,
    /// The status subresource.
    Status,
}

/// Applies `fields` as `obj`'s `part` under [`FIELD_MANAGER`], forced: it takes over fields
/// another manager owns, and fields it set before and leaves out now are removed.
pub async fn server_side_apply<K>(
    client: &Client,
    obj: &K,
    part: Part,
    fields: impl Serialize,
) -> kube::Result<()>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let key = match part {
        Part::Metadata => "metadata",
        Part::Status => "status",
    };
    let mut body = Map::new();
    body.insert("apiVersion".into(), K::api_version(&()).into());
    body.insert("kind".into(), K::kind(&()).into());
    body.insert(
        key.into(),
        serde_json::to_value(fields).map_err(kube::Error::SerdeError)?,
    );
    let patch = Patch::Apply(Value::Object(body));
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let api: Api<K> = Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    let name = obj.name_any();
    match part {
        Part::Metadata => api.patch(&name, &params, &patch).await?,
        Part::Status => api.patch_status(&name, &params, &patch).await?,
    };
    Ok(())
}
