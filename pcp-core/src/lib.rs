//! # pcp-core
//!
//! A Port Control Protocol (PCP, RFC 6887) client: ask a NAT gateway or
//! firewall for inbound port mappings (MAP), outbound peer mappings (PEER)
//! and the external address, and keep them alive across renewals, gateway
//! reboots and address changes.
//!
//! - [`wire`]: the message format, strictly validated.
//! - [`engine`]: the sans-IO state machine (bring your own event loop).
//! - [`client`]: a blocking, thread-safe [`Client`] with one background thread.
//! - [`endpoint`]: the engine with its sockets and no thread ([`ClientConfig`]
//!   is its settings); beneath both the client and discovery.
//! - [`discovery`]: find the PCP server (the default gateways, configured ones).
//! - [`server`] (feature `server`): a PCP server for tests and demos.
//!
//! ```no_run
//! use pcp_core::{Client, Protocol};
//! let client = Client::connect("192.168.1.1")?;
//! let mapping = client.map(Protocol::TCP, 8080)?;
//! println!("reachable at {}:{}", mapping.external_addr(), mapping.external_port());
//! # Ok::<(), pcp_core::Error>(())
//! ```

pub mod client;
mod codes;
pub mod config;
pub mod discovery;
pub mod endpoint;
pub mod engine;
mod error;
#[cfg(feature = "server")]
pub mod server;
mod source_addr;
pub mod wire;

pub use client::{Client, ClientConfig, HandlerId, Mapping, Pending};
pub use codes::ErrorCode;
pub use engine::{Event, MapSpec, MappingId, MappingInfo, PeerSpec, ProtocolChoice, ProtocolVersion, RetransmitPolicy};
pub use error::{quote_input, Error, Result};
pub use wire::{Filter, Nonce, Protocol, ResultCode};
