//! Gives a pod API access like the kubelet's projected service-account volume: when the pod has a
//! projected `serviceAccountToken` volume (the ServiceAccount admission plugin adds `kube-api-access-*`
//! whenever the token is automounted), the agent requests a token bound to the pod through the
//! TokenRequest API and writes a kubeconfig (server = the agent's API server URL, CA = its CA) that the
//! process gets as `KUBECONFIG`.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, Client};

use super::AgentError;

/// Where the agent's own API server is and how to trust it.
#[derive(Debug, Clone)]
pub struct ApiServer {
    /// The server URL (`https://127.0.0.1:PORT`).
    pub url: String,
    /// The CA certificates (DER) to trust; `None` means the agent itself skips verification.
    pub root_certs: Option<Vec<Vec<u8>>>,
}

/// The token settings of the pod's projected service-account token, if it has one.
pub fn projected_token(pod: &Pod) -> Option<(Option<String>, Option<i64>)> {
    pod.spec.as_ref()?.volumes.iter().flatten().find_map(|v| {
        v.projected
            .as_ref()?
            .sources
            .iter()
            .flatten()
            .find_map(|s| {
                s.service_account_token
                    .as_ref()
                    .map(|t| (t.audience.clone(), t.expiration_seconds))
            })
    })
}

/// Requests a token for the pod's service account (bound to the pod) and writes `dir/kubeconfig`,
/// `dir/token`, `dir/ca.crt` and `dir/namespace`; returns the kubeconfig path.
pub async fn write_pod_kubeconfig(
    client: &Client,
    api: &ApiServer,
    pod: &Pod,
    audience: Option<String>,
    expiration_seconds: Option<i64>,
    dir: &Path,
) -> Result<PathBuf, AgentError> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let sa = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_else(|| "default".to_string());
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: audience.into_iter().collect(),
            expiration_seconds: Some(expiration_seconds.unwrap_or(3607).max(600)),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
        },
        ..Default::default()
    };
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let resp: TokenRequest = sas
        .create_subresource("token", &sa, &PostParams::default(), &request)
        .await?;
    let token = resp.status.map(|s| s.token).ok_or_else(|| {
        AgentError::Config(format!("TokenRequest for {ns}/{sa} returned no token"))
    })?;
    std::fs::create_dir_all(dir)
        .map_err(|e| AgentError::Io(format!("create {}", dir.display()), e))?;
    let write = |name: &str, content: &str| {
        let p = dir.join(name);
        std::fs::write(&p, content).map_err(|e| AgentError::Io(format!("write {}", p.display()), e))
    };
    write("token", &token)?;
    write("namespace", ns)?;
    let cluster = match &api.root_certs {
        Some(certs) => {
            write("ca.crt", &pem(certs))?;
            format!(
                "    server: {}\n    certificate-authority: {}\n",
                api.url,
                dir.join("ca.crt").display()
            )
        }
        None => format!(
            "    server: {}\n    insecure-skip-tls-verify: true\n",
            api.url
        ),
    };
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: cluster\n  cluster:\n{cluster}users:\n- name: {sa}\n  \
         user:\n    tokenFile: {}\ncontexts:\n- name: pod\n  context:\n    cluster: cluster\n    user: {sa}\n    \
         namespace: {ns}\ncurrent-context: pod\n",
        dir.join("token").display()
    );
    write("kubeconfig", &kubeconfig)?;
    Ok(dir.join("kubeconfig"))
}

/// PEM-encodes DER certificates.
pub fn pem(certs: &[Vec<u8>]) -> String {
    let mut out = String::new();
    for der in certs {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        PodSpec, ProjectedVolumeSource, ServiceAccountTokenProjection, Volume, VolumeProjection,
    };

    #[test]
    fn finds_projected_token() {
        let mut pod = Pod::default();
        assert!(projected_token(&pod).is_none());
        pod.spec = Some(PodSpec {
            volumes: Some(vec![Volume {
                name: "kube-api-access-x".into(),
                projected: Some(ProjectedVolumeSource {
                    sources: Some(vec![VolumeProjection {
                        service_account_token: Some(ServiceAccountTokenProjection {
                            expiration_seconds: Some(3607),
                            path: "token".into(),
                            audience: None,
                        }),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        });
        assert_eq!(projected_token(&pod), Some((None, Some(3607))));
    }

    #[test]
    fn pem_wraps_at_64() {
        let p = pem(&[vec![0u8; 60]]);
        assert!(p.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(p.lines().all(|l| l.len() <= 64));
        assert!(p.ends_with("-----END CERTIFICATE-----\n"));
    }
}
