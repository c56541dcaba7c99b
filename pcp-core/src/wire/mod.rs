//! PCP version 2 wire format (RFC 6887 sections 7, 11, 12, 13 and 14), and
//! NAT-PMP's (RFC 6886) in [`natpmp`].
//!
//! Everything here is pure: bytes in, typed messages out, and back. The
//! decoders are strict: each way a packet can be wrong has its own
//! [`WireError`], and no input, however malformed, makes them panic.
//!
//! ```
//! use pcp_core::wire::{Request, Response, MapPayload, Nonce, Protocol};
//! use std::net::{IpAddr, Ipv4Addr};
//!
//! let map = MapPayload::new(Nonce::from_bytes([7; 12]), Protocol::TCP, 8080);
//! let req = Request::map(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 100)), 3600, map);
//! let bytes = req.encode();
//! assert_eq!(bytes.len(), 60);
//! assert_eq!(Request::decode(&bytes).unwrap(), req);
//! ```

mod address;
mod compare;
mod error;
mod message;
pub mod natpmp;
mod option;
mod types;

pub use address::{from_wire_address, to_wire_address, unspecified_external};
pub(crate) use compare::{canonical, same_endpoint};
pub use error::WireError;
pub use message::{Body, MapPayload, MappingFields, PeerPayload, Request, Response};
pub use option::{Filter, PcpOption};
pub use types::{Nonce, Opcode, Protocol, ResultCode};

/// The only protocol version this crate speaks.
pub const VERSION: u8 = 2;
/// Largest PCP message (RFC 6887 section 7).
pub const MAX_MESSAGE_SIZE: usize = 1100;
/// UDP port a PCP server listens on.
pub const SERVER_PORT: u16 = 5351;
/// UDP port clients listen on for unsolicited ANNOUNCE (section 14.1.3).
pub const CLIENT_PORT: u16 = 5350;
/// Size of the common request/response header.
pub const HEADER_SIZE: usize = 24;
/// Size of the MAP opcode payload.
pub const MAP_PAYLOAD_SIZE: usize = 36;
/// Size of the PEER opcode payload.
pub const PEER_PAYLOAD_SIZE: usize = 56;
