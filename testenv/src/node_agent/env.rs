//! Resolves a container's environment like the kubelet: `envFrom` first, then `env` (later entries win),
//! with `value` (`$(VAR)` expanded from earlier entries), `secretKeyRef`, `configMapKeyRef` and
//! `fieldRef`. `resourceFieldRef` is not supported and resolves to an empty value.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::{Api, Client};

use super::AgentError;
use super::image::expand;

/// The secrets (name → key → value) and config maps a container refers to; absent names do not exist.
#[derive(Debug, Clone, Default)]
pub struct EnvSources {
    /// Secret data by secret name, decoded values as strings (lossy UTF-8).
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
    /// Config map data (`data` and UTF-8 `binaryData`) by config map name.
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
}

/// The IP reported for pods and the node.
pub const LOCAL_IP: &str = "127.0.0.1";

impl EnvSources {
    /// Fetches the secrets and config maps `container` refers to from the pod's namespace.
    pub async fn fetch(
        client: &Client,
        namespace: &str,
        container: &Container,
    ) -> Result<Self, AgentError> {
        let mut secret_names = Vec::new();
        let mut cm_names = Vec::new();
        for from in container.env_from.iter().flatten() {
            if let Some(r) = &from.secret_ref {
                secret_names.push(r.name.clone());
            }
            if let Some(r) = &from.config_map_ref {
                cm_names.push(r.name.clone());
            }
        }
        for var in container.env.iter().flatten() {
            if let Some(vf) = &var.value_from {
                if let Some(r) = &vf.secret_key_ref {
                    secret_names.push(r.name.clone());
                }
                if let Some(r) = &vf.config_map_key_ref {
                    cm_names.push(r.name.clone());
                }
            }
        }
        let mut out = Self::default();
        let secrets: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(client.clone(), namespace);
        for name in secret_names {
            if out.secrets.contains_key(&name) {
                continue;
            }
            if let Some(s) = secrets.get_opt(&name).await? {
                let mut data: BTreeMap<String, String> = s.string_data.unwrap_or_default();
                for (k, v) in s.data.unwrap_or_default() {
                    data.insert(k, String::from_utf8_lossy(&v.0).into_owned());
                }
                out.secrets.insert(name, data);
            }
        }
        let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
            Api::namespaced(client.clone(), namespace);
        for name in cm_names {
            if out.config_maps.contains_key(&name) {
                continue;
            }
            if let Some(cm) = cms.get_opt(&name).await? {
                let mut data = cm.data.unwrap_or_default();
                for (k, v) in cm.binary_data.unwrap_or_default() {
                    data.insert(k, String::from_utf8_lossy(&v.0).into_owned());
                }
                out.config_maps.insert(name, data);
            }
        }
        Ok(out)
    }
}

/// Resolves the environment of `container` in `pod`; a missing non-optional secret/config map or key
/// is an [`AgentError::ContainerConfig`] (the kubelet's `CreateContainerConfigError`).
pub fn resolve_env(
    pod: &Pod,
    container: &Container,
    sources: &EnvSources,
) -> Result<BTreeMap<String, String>, AgentError> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut env = BTreeMap::new();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or("");
        if let Some(r) = &from.secret_ref {
            let data = all_keys(&sources.secrets, "secret", &r.name, r.optional)?;
            env.extend(data.map(|(k, v)| (format!("{prefix}{k}"), v.clone())));
        }
        if let Some(r) = &from.config_map_ref {
            let data = all_keys(&sources.config_maps, "configmap", &r.name, r.optional)?;
            env.extend(data.map(|(k, v)| (format!("{prefix}{k}"), v.clone())));
        }
    }
    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            None => Some(expand(var.value.as_deref().unwrap_or(""), &env)),
            Some(vf) => {
                if let Some(r) = &vf.secret_key_ref {
                    key_ref(
                        &sources.secrets,
                        "secret",
                        "Secret",
                        ns,
                        &r.name,
                        &r.key,
                        r.optional,
                    )?
                } else if let Some(r) = &vf.config_map_key_ref {
                    key_ref(
                        &sources.config_maps,
                        "configmap",
                        "ConfigMap",
                        ns,
                        &r.name,
                        &r.key,
                        r.optional,
                    )?
                } else if let Some(f) = &vf.field_ref {
                    Some(field_value(pod, &f.field_path)?)
                } else {
                    Some(String::new())
                }
            }
        };
        if let Some(value) = value {
            env.insert(var.name.clone(), value);
        }
    }
    Ok(env)
}

fn config_err(msg: String) -> AgentError {
    AgentError::ContainerConfig(msg)
}

/// Every key of `what` (secret or configmap) `name` for `envFrom`: none when it is missing and
/// `optional`, else an error.
fn all_keys<'a>(
    maps: &'a BTreeMap<String, BTreeMap<String, String>>,
    what: &str,
    name: &str,
    optional: Option<bool>,
) -> Result<impl Iterator<Item = (&'a String, &'a String)>, AgentError> {
    match maps.get(name) {
        Some(data) => Ok(data.iter()),
        None if optional == Some(true) => Ok(Default::default()),
        None => Err(config_err(format!("{what} \"{name}\" not found"))),
    }
}

fn key_ref(
    maps: &BTreeMap<String, BTreeMap<String, String>>,
    what: &str,
    kind: &str,
    ns: &str,
    name: &str,
    key: &str,
    optional: Option<bool>,
) -> Result<Option<String>, AgentError> {
    let optional = optional == Some(true);
    match maps.get(name) {
        None if optional => Ok(None),
        None => Err(config_err(format!("{what} \"{name}\" not found"))),
        Some(data) => match data.get(key) {
            Some(v) => Ok(Some(v.clone())),
            None if optional => Ok(None),
            None => Err(config_err(format!(
                "couldn't find key {key} in {kind} {ns}/{name}"
            ))),
        },
    }
}

/// The downward-API value of `path` for `pod`.
pub fn field_value(pod: &Pod, path: &str) -> Result<String, AgentError> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let indexed = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix("']"))
            .map(str::to_string)
    };
    let value = match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        "status.podIP" | "status.hostIP" => Some(LOCAL_IP.to_string()),
        "status.podIPs" | "status.hostIPs" => Some(LOCAL_IP.to_string()),
        _ => {
            if let Some(key) = indexed("metadata.annotations['") {
                meta.annotations.as_ref().and_then(|a| a.get(&key).cloned())
            } else if let Some(key) = indexed("metadata.labels['") {
                meta.labels.as_ref().and_then(|a| a.get(&key).cloned())
            } else {
                return Err(config_err(format!("unsupported fieldRef path {path:?}")));
            }
        }
    };
    Ok(value.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec,
        SecretEnvSource, SecretKeySelector,
    };

    fn var(name: &str, value: Option<&str>, from: Option<EnvVarSource>) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: value.map(Into::into),
            value_from: from,
        }
    }

    fn secret_ref(name: &str, key: &str, optional: Option<bool>) -> Option<EnvVarSource> {
        Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: name.into(),
                key: key.into(),
                optional,
            }),
            ..Default::default()
        })
    }

    fn field(path: &str) -> Option<EnvVarSource> {
        Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn pod() -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some("p-0".into());
        p.metadata.namespace = Some("ns".into());
        p.metadata.annotations = Some(BTreeMap::from([(
            "batch.kubernetes.io/job-completion-index".to_string(),
            "3".to_string(),
        )]));
        p.spec = Some(PodSpec {
            node_name: Some("n1".into()),
            ..Default::default()
        });
        p
    }

    fn sources() -> EnvSources {
        EnvSources {
            secrets: BTreeMap::from([(
                "db".to_string(),
                BTreeMap::from([("url".to_string(), "postgres://x".to_string())]),
            )]),
            config_maps: BTreeMap::from([(
                "cfg".to_string(),
                BTreeMap::from([("mode".to_string(), "fast".to_string())]),
            )]),
        }
    }

    #[test]
    fn resolves_all_kinds() {
        let c = Container {
            env_from: Some(vec![EnvFromSource {
                prefix: Some("S_".into()),
                secret_ref: Some(SecretEnvSource {
                    name: "db".into(),
                    optional: None,
                }),
                ..Default::default()
            }]),
            env: Some(vec![
                var("A", Some("a"), None),
                var("B", Some("$(A)-b"), None),
                var("DB", None, secret_ref("db", "url", None)),
                var("OPT", None, secret_ref("nope", "url", Some(true))),
                var(
                    "IDX",
                    None,
                    field("metadata.annotations['batch.kubernetes.io/job-completion-index']"),
                ),
                var("NODE", None, field("spec.nodeName")),
                var("IP", None, field("status.podIP")),
                var(
                    "MODE",
                    None,
                    Some(EnvVarSource {
                        config_map_key_ref: Some(ConfigMapKeySelector {
                            name: "cfg".into(),
                            key: "mode".into(),
                            optional: None,
                        }),
                        ..Default::default()
                    }),
                ),
            ]),
            ..Default::default()
        };
        let env = resolve_env(&pod(), &c, &sources()).unwrap();
        assert_eq!(env["S_url"], "postgres://x");
        assert_eq!(env["B"], "a-b");
        assert_eq!(env["DB"], "postgres://x");
        assert!(!env.contains_key("OPT"));
        assert_eq!(env["IDX"], "3");
        assert_eq!(env["NODE"], "n1");
        assert_eq!(env["IP"], LOCAL_IP);
        assert_eq!(env["MODE"], "fast");
    }

    #[test]
    fn missing_secret_or_key_is_a_config_error() {
        let c = Container {
            env: Some(vec![var("DB", None, secret_ref("gone", "url", None))]),
            ..Default::default()
        };
        let err = resolve_env(&pod(), &c, &sources()).unwrap_err();
        assert!(
            matches!(err, AgentError::ContainerConfig(ref m) if m == "secret \"gone\" not found")
        );
        let c = Container {
            env: Some(vec![var("DB", None, secret_ref("db", "password", None))]),
            ..Default::default()
        };
        let err = resolve_env(&pod(), &c, &sources()).unwrap_err();
        assert!(
            matches!(err, AgentError::ContainerConfig(ref m) if m.contains("couldn't find key password"))
        );
    }

    #[test]
    fn field_paths() {
        assert_eq!(field_value(&pod(), "metadata.name").unwrap(), "p-0");
        assert_eq!(field_value(&pod(), "metadata.labels['x']").unwrap(), "");
        assert!(field_value(&pod(), "spec.bogus").is_err());
    }
}
