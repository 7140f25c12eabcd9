//! Placeholder until the simulator lands.
use std::net::SocketAddr;
pub struct SimConfig {
    pub movies: u64,
    pub adult_movies: u64,
    pub seed: u64,
    pub rps: Option<u32>,
    pub latency_ms: u64,
    pub error_rate: f64,
    pub start_date: chrono::NaiveDate,
}
impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            movies: 5000,
            adult_movies: 0,
            seed: 42,
            rps: None,
            latency_ms: 0,
            error_rate: 0.0,
            start_date: chrono::Utc::now().date_naive(),
        }
    }
}
pub struct SimHandle {
    pub addr: SocketAddr,
}
pub async fn serve(_c: SimConfig, _l: tokio::net::TcpListener) -> std::io::Result<()> {
    Ok(())
}
impl SimHandle {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn tmdb_url(&self) -> String {
        format!("{}/3", self.base_url())
    }
    pub fn export_url(&self) -> String {
        format!("{}/p/exports", self.base_url())
    }
}
