//! NAT-PMP (RFC 6886) wire format: PCP's predecessor, version 0.
//!
//! A NAT-PMP-only gateway answers a PCP request with the 8-byte NAT-PMP
//! "unsupported version" answer; a PCP client then falls back to these
//! messages (RFC 6887 section 9). The decoders are as strict as PCP's:
//! each way a datagram can be wrong has its own [`WireError`], and no input
//! makes them panic.
//!
//! ```
//! use pcp_core::wire::natpmp::{NatPmpProtocol, NatPmpRequest, NatPmpResponse, NatPmpResult};
//!
//! let req = NatPmpRequest::Map { protocol: NatPmpProtocol::Tcp, internal_port: 8080, suggested_port: 0, lifetime: 7200 };
//! assert_eq!(req.encode().len(), 12);
//! let answer = [0, 130, 0, 0, 0, 0, 0, 9, 0x1f, 0x90, 0x4e, 0x20, 0, 0, 0x1c, 0x20];
//! let res = NatPmpResponse::decode(&answer).unwrap();
//! assert_eq!(res.result(), NatPmpResult::Success);
//! assert_eq!(res.epoch(), 9);
//! ```

use std::fmt;
use std::net::Ipv4Addr;

use super::{Protocol, WireError, MAX_MESSAGE_SIZE};

/// NAT-PMP's version number.
pub const NATPMP_VERSION: u8 = 0;
/// Where a NAT-PMP gateway multicasts its external address after a reboot
/// or an address change (RFC 6886 section 3.2.1): 224.0.0.1, port 5350;
/// gateways from before the RFC (2006 drafts) use port 5351.
pub const NATPMP_ANNOUNCE_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
/// Size of the external-address request.
pub const EXTERNAL_ADDRESS_REQUEST_SIZE: usize = 2;
/// Size of a MAP request.
pub const MAP_REQUEST_SIZE: usize = 12;
/// Size of the header every response starts with: version, opcode, result
/// code and epoch. An error answer may be this alone.
pub const RESPONSE_HEADER_SIZE: usize = 8;
/// Size of the external-address response.
pub const EXTERNAL_ADDRESS_RESPONSE_SIZE: usize = 12;
/// Size of a MAP response.
pub const MAP_RESPONSE_SIZE: usize = 16;

/// The two transport protocols NAT-PMP can map (its opcodes 1 and 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatPmpProtocol {
    Udp,
    Tcp,
}

impl NatPmpProtocol {
    /// The request opcode (1 = UDP, 2 = TCP).
    pub fn opcode(self) -> u8 {
        match self {
            NatPmpProtocol::Udp => 1,
            NatPmpProtocol::Tcp => 2,
        }
    }

    fn from_opcode(op: u8) -> Option<Self> {
        match op {
            1 => Some(NatPmpProtocol::Udp),
            2 => Some(NatPmpProtocol::Tcp),
            _ => None,
        }
    }

    /// The IANA protocol it stands for.
    pub fn protocol(self) -> Protocol {
        match self {
            NatPmpProtocol::Udp => Protocol::UDP,
            NatPmpProtocol::Tcp => Protocol::TCP,
        }
    }

    /// `None` for a protocol NAT-PMP cannot map (anything but TCP and UDP).
    pub fn from_protocol(p: Protocol) -> Option<Self> {
        match p {
            Protocol::UDP => Some(NatPmpProtocol::Udp),
            Protocol::TCP => Some(NatPmpProtocol::Tcp),
            _ => None,
        }
    }
}

/// The result codes of RFC 6886 section 3.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatPmpResult {
    Success,
    UnsupportedVersion,
    /// "Not Authorized/Refused": for example, the box has mapping disabled.
    NotAuthorized,
    /// For example, the gateway has no external address yet.
    NetworkFailure,
    /// Out of resources: no more mappings or ports.
    OutOfResources,
    UnsupportedOpcode,
}

impl NatPmpResult {
    /// Every result code, in wire order.
    pub const ALL: [NatPmpResult; 6] = [
        NatPmpResult::Success,
        NatPmpResult::UnsupportedVersion,
        NatPmpResult::NotAuthorized,
        NatPmpResult::NetworkFailure,
        NatPmpResult::OutOfResources,
        NatPmpResult::UnsupportedOpcode,
    ];

    /// The 16-bit value on the wire.
    pub fn to_u16(self) -> u16 {
        NatPmpResult::ALL.iter().position(|c| *c == self).unwrap_or(0) as u16
    }

    /// `None` for a code outside 0..=5.
    pub fn from_u16(v: u16) -> Option<Self> {
        NatPmpResult::ALL.get(usize::from(v)).copied()
    }

    /// The RFC's description, e.g. `NOT_AUTHORIZED`.
    pub fn name(self) -> &'static str {
        match self {
            NatPmpResult::Success => "SUCCESS",
            NatPmpResult::UnsupportedVersion => "UNSUPPORTED_VERSION",
            NatPmpResult::NotAuthorized => "NOT_AUTHORIZED",
            NatPmpResult::NetworkFailure => "NETWORK_FAILURE",
            NatPmpResult::OutOfResources => "OUT_OF_RESOURCES",
            NatPmpResult::UnsupportedOpcode => "UNSUPPORTED_OPCODE",
        }
    }
}

impl fmt::Display for NatPmpResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A NAT-PMP request (RFC 6886 sections 3.2 and 3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatPmpRequest {
    /// Opcode 0: what is the external address?
    ExternalAddress,
    /// Opcodes 1 (UDP) and 2 (TCP): create, renew or (lifetime 0) delete a
    /// mapping. A delete sends suggested port 0 (section 3.4).
    Map { protocol: NatPmpProtocol, internal_port: u16, suggested_port: u16, lifetime: u32 },
}

impl NatPmpRequest {
    /// The request opcode.
    pub fn opcode(&self) -> u8 {
        match self {
            NatPmpRequest::ExternalAddress => 0,
            NatPmpRequest::Map { protocol, .. } => protocol.opcode(),
        }
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        match *self {
            NatPmpRequest::ExternalAddress => vec![NATPMP_VERSION, 0],
            NatPmpRequest::Map { protocol, internal_port, suggested_port, lifetime } => {
                let mut v = Vec::with_capacity(MAP_REQUEST_SIZE);
                v.extend_from_slice(&[NATPMP_VERSION, protocol.opcode(), 0, 0]);
                v.extend_from_slice(&internal_port.to_be_bytes());
                v.extend_from_slice(&suggested_port.to_be_bytes());
                v.extend_from_slice(&lifetime.to_be_bytes());
                v
            }
        }
    }

    /// Strict decode, as a server does. A server answers
    /// [`WireError::WrongVersion`] with "unsupported version" and
    /// [`WireError::UnknownOpcode`] with "unsupported opcode", and ignores
    /// [`WireError::WrongDirection`] (a response is never answered).
    pub fn decode(buf: &[u8]) -> Result<NatPmpRequest, WireError> {
        if buf.len() < EXTERNAL_ADDRESS_REQUEST_SIZE {
            return Err(WireError::TooShort { len: buf.len(), min: EXTERNAL_ADDRESS_REQUEST_SIZE });
        }
        if buf.len() > MAX_MESSAGE_SIZE {
            return Err(WireError::TooLong(buf.len()));
        }
        if buf[0] != NATPMP_VERSION {
            return Err(WireError::WrongVersion(buf[0]));
        }
        if buf[1] & 0x80 != 0 {
            return Err(WireError::WrongDirection { expected: "request" });
        }
        let opcode = buf[1];
        let expected = match opcode {
            0 => EXTERNAL_ADDRESS_REQUEST_SIZE,
            1 | 2 => MAP_REQUEST_SIZE,
            other => return Err(WireError::UnknownOpcode(other)),
        };
        if buf.len() != expected {
            return Err(WireError::NatPmpLength { opcode, len: buf.len(), expected });
        }
        Ok(match NatPmpProtocol::from_opcode(opcode) {
            None => NatPmpRequest::ExternalAddress,
            // Bytes 2-3 are reserved: "MUST be ignored on reception".
            Some(protocol) => NatPmpRequest::Map {
                protocol,
                internal_port: be16(buf, 4),
                suggested_port: be16(buf, 6),
                lifetime: be32(buf, 8),
            },
        })
    }
}

/// A NAT-PMP response (RFC 6886 sections 3.2, 3.3 and 3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatPmpResponse {
    /// Opcode 128: the external address. Sent unsolicited to 224.0.0.1
    /// after a reboot or an address change (the announcement).
    ExternalAddress { result: NatPmpResult, epoch: u32, external_addr: Ipv4Addr },
    /// Opcodes 129 (UDP) and 130 (TCP). After a delete, the external port
    /// and lifetime are 0.
    Map {
        protocol: NatPmpProtocol,
        result: NatPmpResult,
        epoch: u32,
        internal_port: u16,
        external_port: u16,
        lifetime: u32,
    },
    /// An error answer with only the 8-byte header: what a NAT-PMP gateway
    /// sends to a PCP request ("unsupported version", answering opcode
    /// `request_opcode`), and the answer to an opcode it does not know.
    Header { request_opcode: u8, result: NatPmpResult, epoch: u32 },
}

impl NatPmpResponse {
    /// The 8-byte "unsupported version" answer a NAT-PMP gateway sends to
    /// any request whose version is not 0 (a PCP request, for example).
    pub fn unsupported_version(request_opcode: u8, epoch: u32) -> Self {
        NatPmpResponse::Header {
            request_opcode: request_opcode & 0x7f,
            result: NatPmpResult::UnsupportedVersion,
            epoch,
        }
    }

    /// The unsolicited external-address announcement (section 3.2.1).
    pub fn announcement(epoch: u32, external_addr: Ipv4Addr) -> Self {
        NatPmpResponse::ExternalAddress { result: NatPmpResult::Success, epoch, external_addr }
    }

    pub fn result(&self) -> NatPmpResult {
        match *self {
            NatPmpResponse::ExternalAddress { result, .. }
            | NatPmpResponse::Map { result, .. }
            | NatPmpResponse::Header { result, .. } => result,
        }
    }

    /// The gateway's seconds since start of epoch (section 3.6).
    pub fn epoch(&self) -> u32 {
        match *self {
            NatPmpResponse::ExternalAddress { epoch, .. }
            | NatPmpResponse::Map { epoch, .. }
            | NatPmpResponse::Header { epoch, .. } => epoch,
        }
    }

    /// The opcode of the request this answers (the wire opcode minus 128).
    pub fn request_opcode(&self) -> u8 {
        match *self {
            NatPmpResponse::ExternalAddress { .. } => 0,
            NatPmpResponse::Map { protocol, .. } => protocol.opcode(),
            NatPmpResponse::Header { request_opcode, .. } => request_opcode,
        }
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(MAP_RESPONSE_SIZE);
        v.push(NATPMP_VERSION);
        v.push(0x80 | self.request_opcode());
        v.extend_from_slice(&self.result().to_u16().to_be_bytes());
        v.extend_from_slice(&self.epoch().to_be_bytes());
        match *self {
            NatPmpResponse::ExternalAddress { external_addr, .. } => v.extend_from_slice(&external_addr.octets()),
            NatPmpResponse::Map { internal_port, external_port, lifetime, .. } => {
                v.extend_from_slice(&internal_port.to_be_bytes());
                v.extend_from_slice(&external_port.to_be_bytes());
                v.extend_from_slice(&lifetime.to_be_bytes());
            }
            NatPmpResponse::Header { .. } => {}
        }
        v
    }

    /// Strict decode, as a client does: version 0, the R bit (opcode 128 or
    /// more), a known result code, and the exact length of the opcode's
    /// response. An error may come as the 8-byte header alone; a gateway
    /// that does not know an opcode echoes the whole request (section 3.5),
    /// so "unsupported opcode" is accepted at any length.
    pub fn decode(buf: &[u8]) -> Result<NatPmpResponse, WireError> {
        if buf.len() < RESPONSE_HEADER_SIZE {
            return Err(WireError::TooShort { len: buf.len(), min: RESPONSE_HEADER_SIZE });
        }
        if buf.len() > MAX_MESSAGE_SIZE {
            return Err(WireError::TooLong(buf.len()));
        }
        if buf[0] != NATPMP_VERSION {
            return Err(WireError::WrongVersion(buf[0]));
        }
        if buf[1] & 0x80 == 0 {
            return Err(WireError::WrongDirection { expected: "response" });
        }
        let opcode = buf[1] & 0x7f;
        let code = be16(buf, 2);
        let result = NatPmpResult::from_u16(code).ok_or(WireError::NatPmpResultCode(code))?;
        let epoch = be32(buf, 4);
        let full = match opcode {
            0 => EXTERNAL_ADDRESS_RESPONSE_SIZE,
            1 | 2 => MAP_RESPONSE_SIZE,
            _ if result == NatPmpResult::UnsupportedOpcode => {
                return Ok(NatPmpResponse::Header { request_opcode: opcode, result, epoch })
            }
            other => return Err(WireError::UnknownOpcode(other)),
        };
        if buf.len() == RESPONSE_HEADER_SIZE && result != NatPmpResult::Success {
            return Ok(NatPmpResponse::Header { request_opcode: opcode, result, epoch });
        }
        if buf.len() != full {
            return Err(WireError::NatPmpLength { opcode: buf[1], len: buf.len(), expected: full });
        }
        Ok(match NatPmpProtocol::from_opcode(opcode) {
            None => NatPmpResponse::ExternalAddress {
                result,
                epoch,
                external_addr: Ipv4Addr::new(buf[8], buf[9], buf[10], buf[11]),
            },
            Some(protocol) => NatPmpResponse::Map {
                protocol,
                result,
                epoch,
                internal_port: be16(buf, 8),
                external_port: be16(buf, 10),
                lifetime: be32(buf, 12),
            },
        })
    }
}

/// Whether `buf` is a NAT-PMP "unsupported version" answer: what a
/// NAT-PMP-only gateway sends to a PCP request (RFC 6887 section 9).
/// Returns the epoch it carries.
pub fn unsupported_version_epoch(buf: &[u8]) -> Option<u32> {
    match NatPmpResponse::decode(buf) {
        Ok(r) if r.result() == NatPmpResult::UnsupportedVersion => Some(r.epoch()),
        _ => None,
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
