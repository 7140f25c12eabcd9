//! HTTP client setup shared by every outbound client (TMDb, OMDb, the kube client's TLS).

/// A `reqwest` client builder with the process-wide TLS provider installed. kube (ring) and
/// reqwest/sqlx would otherwise leave rustls unable to pick a provider.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}

/// Installs rustls' ring provider as the process default (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
