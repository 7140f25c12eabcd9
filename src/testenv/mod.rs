pub mod node_agent;
