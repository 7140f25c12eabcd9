//! Test tools for tmdbsync, kept out of the product crate: the node agent that plays kubelet on the
//! test control plane (`scripts/testenv.sh`), used by the end-to-end tests, the smoke script and the
//! demo. See `docs/testenv.md`.

/// The local node agent that runs pods as processes.
pub mod node_agent;
