//! The step agent: clnrm itself, static, running inside each service container as its init
//! (`clnrm __agent`) and running steps sent over a unix socket, so a step costs a fork and
//! an exec in the container instead of a Docker API round trip. The Docker backend starts it
//! and talks to it; nothing else depends on this module.

pub mod binary;
pub mod client;
pub mod protocol;
pub mod server;

pub use binary::{find_agent_binary, AGENT_BIN_ENV};
pub use client::AgentConn;
pub use server::run_agent;

/// Where the agent binary is mounted in a container.
pub const AGENT_PATH: &str = "/.clnrm/agent";
/// The per-container host directory holding the socket, mounted here.
pub const AGENT_DIR: &str = "/.clnrm/io";
/// The socket's file name in that directory.
pub const SOCKET_NAME: &str = "agent.sock";
