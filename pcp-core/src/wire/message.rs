use std::net::{IpAddr, Ipv4Addr};

use super::address::{from_wire_address, to_wire_address};
use super::{
    Nonce, Opcode, PcpOption, Protocol, ResultCode, WireError, HEADER_SIZE, MAP_PAYLOAD_SIZE, MAX_MESSAGE_SIZE,
    PEER_PAYLOAD_SIZE, VERSION,
};

/// The MAP opcode payload (section 11.1): the same layout in request and
/// response; in a request the external fields are suggestions, in a response
/// what the server assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MapPayload {
    pub nonce: Nonce,
    pub protocol: Protocol,
    pub internal_port: u16,
    pub external_port: u16,
    pub external_addr: IpAddr,
}

impl MapPayload {
    /// A payload with no preference for the external port or (IPv4) address.
    pub fn new(nonce: Nonce, protocol: Protocol, internal_port: u16) -> Self {
        MapPayload {
            nonce,
            protocol,
            internal_port,
            external_port: 0,
            external_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        }
    }
}

/// The PEER opcode payload (section 12.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerPayload {
    pub nonce: Nonce,
    pub protocol: Protocol,
    pub internal_port: u16,
    pub external_port: u16,
    pub external_addr: IpAddr,
    pub remote_port: u16,
    pub remote_addr: IpAddr,
}

/// The opcode-specific part of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Body {
    Announce,
    Map(MapPayload),
    Peer(PeerPayload),
}

/// What MAP and PEER payloads have in common, plus PEER's remote peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappingFields {
    pub nonce: Nonce,
    pub protocol: Protocol,
    pub internal_port: u16,
    pub external_port: u16,
    pub external_addr: IpAddr,
    pub remote: Option<(IpAddr, u16)>,
}

impl Body {
    /// The same MAP or PEER body with the external port and address a
    /// server assigns in its answer (RFC 6887 sections 11.4 and 12.3);
    /// ANNOUNCE, which has neither, is returned as it is.
    pub fn with_external(self, port: u16, addr: IpAddr) -> Body {
        match self {
            Body::Map(m) => Body::Map(MapPayload { external_port: port, external_addr: addr, ..m }),
            Body::Peer(p) => Body::Peer(PeerPayload { external_port: port, external_addr: addr, ..p }),
            Body::Announce => Body::Announce,
        }
    }

    /// The fields that identify and describe a mapping; `None` for ANNOUNCE.
    pub fn mapping_fields(&self) -> Option<MappingFields> {
        match *self {
            Body::Announce => None,
            Body::Map(m) => Some(MappingFields {
                nonce: m.nonce,
                protocol: m.protocol,
                internal_port: m.internal_port,
                external_port: m.external_port,
                external_addr: m.external_addr,
                remote: None,
            }),
            Body::Peer(p) => Some(MappingFields {
                nonce: p.nonce,
                protocol: p.protocol,
                internal_port: p.internal_port,
                external_port: p.external_port,
                external_addr: p.external_addr,
                remote: Some((p.remote_addr, p.remote_port)),
            }),
        }
    }

    pub fn opcode(&self) -> Opcode {
        match self {
            Body::Announce => Opcode::Announce,
            Body::Map(_) => Opcode::Map,
            Body::Peer(_) => Opcode::Peer,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Body::Announce => {}
            Body::Map(m) => encode_common(out, m.nonce, m.protocol, m.internal_port, m.external_port, m.external_addr),
            Body::Peer(p) => {
                encode_common(out, p.nonce, p.protocol, p.internal_port, p.external_port, p.external_addr);
                out.extend_from_slice(&p.remote_port.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&to_wire_address(p.remote_addr));
            }
        }
    }

    /// Decodes the payload of `opcode` at the start of `buf`; returns it and
    /// the bytes it used.
    fn decode(opcode: Opcode, buf: &[u8]) -> Result<(Body, usize), WireError> {
        let need = match opcode {
            Opcode::Announce => 0,
            Opcode::Map => MAP_PAYLOAD_SIZE,
            Opcode::Peer => PEER_PAYLOAD_SIZE,
        };
        if buf.len() < need {
            return Err(WireError::TruncatedPayload { opcode, need, have: buf.len() });
        }
        let common = |b: &[u8]| {
            (
                Nonce::from_bytes(b[0..12].try_into().expect("12 bytes")),
                Protocol(b[12]),
                u16::from_be_bytes([b[16], b[17]]),
                u16::from_be_bytes([b[18], b[19]]),
                from_wire_address(b[20..36].try_into().expect("16 bytes")),
            )
        };
        let body = match opcode {
            Opcode::Announce => Body::Announce,
            Opcode::Map => {
                let (nonce, protocol, internal_port, external_port, external_addr) = common(buf);
                Body::Map(MapPayload { nonce, protocol, internal_port, external_port, external_addr })
            }
            Opcode::Peer => {
                let (nonce, protocol, internal_port, external_port, external_addr) = common(buf);
                Body::Peer(PeerPayload {
                    nonce,
                    protocol,
                    internal_port,
                    external_port,
                    external_addr,
                    remote_port: u16::from_be_bytes([buf[36], buf[37]]),
                    remote_addr: from_wire_address(buf[40..56].try_into().expect("16 bytes")),
                })
            }
        };
        Ok((body, need))
    }
}

fn encode_common(out: &mut Vec<u8>, nonce: Nonce, protocol: Protocol, internal: u16, external: u16, addr: IpAddr) {
    out.extend_from_slice(nonce.as_bytes());
    out.extend_from_slice(&[protocol.0, 0, 0, 0]);
    out.extend_from_slice(&internal.to_be_bytes());
    out.extend_from_slice(&external.to_be_bytes());
    out.extend_from_slice(&to_wire_address(addr));
}

fn check_frame(buf: &[u8]) -> Result<(), WireError> {
    if buf.len() < HEADER_SIZE {
        return Err(WireError::TooShort { len: buf.len(), min: HEADER_SIZE });
    }
    if buf.len() > MAX_MESSAGE_SIZE {
        return Err(WireError::TooLong(buf.len()));
    }
    if buf.len() % 4 != 0 {
        return Err(WireError::NotMultipleOf4(buf.len()));
    }
    if buf[0] != VERSION {
        return Err(WireError::WrongVersion(buf[0]));
    }
    Ok(())
}

fn opcode_of(byte: u8) -> Result<Opcode, WireError> {
    Opcode::from_u8(byte & 0x7f).ok_or(WireError::UnknownOpcode(byte & 0x7f))
}

/// A PCP request (section 7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Requested lifetime in seconds; 0 deletes (MAP, PEER).
    pub lifetime: u32,
    /// The address the request leaves from (or the third party's, with THIRD_PARTY).
    pub client_addr: IpAddr,
    pub body: Body,
    pub options: Vec<PcpOption>,
}

impl Request {
    pub fn announce(client_addr: IpAddr) -> Self {
        Request { lifetime: 0, client_addr, body: Body::Announce, options: Vec::new() }
    }

    pub fn map(client_addr: IpAddr, lifetime: u32, payload: MapPayload) -> Self {
        Request { lifetime, client_addr, body: Body::Map(payload), options: Vec::new() }
    }

    pub fn peer(client_addr: IpAddr, lifetime: u32, payload: PeerPayload) -> Self {
        Request { lifetime, client_addr, body: Body::Peer(payload), options: Vec::new() }
    }

    pub fn encoded_len(&self) -> usize {
        HEADER_SIZE
            + match self.body {
                Body::Announce => 0,
                Body::Map(_) => MAP_PAYLOAD_SIZE,
                Body::Peer(_) => PEER_PAYLOAD_SIZE,
            }
            + self.options.iter().map(PcpOption::encoded_len).sum::<usize>()
    }

    /// Appends the wire form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.push(VERSION);
        out.push(self.body.opcode().to_u8());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.lifetime.to_be_bytes());
        out.extend_from_slice(&to_wire_address(self.client_addr));
        self.body.encode(out);
        for o in &self.options {
            o.encode(out);
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut v);
        v
    }

    /// Strict decode, as a server does.
    pub fn decode(buf: &[u8]) -> Result<Request, WireError> {
        check_frame(buf)?;
        if buf[1] & 0x80 != 0 {
            return Err(WireError::WrongDirection { expected: "request" });
        }
        let opcode = opcode_of(buf[1])?;
        let lifetime = u32::from_be_bytes(buf[4..8].try_into().expect("4 bytes"));
        let client_addr = from_wire_address(buf[8..24].try_into().expect("16 bytes"));
        let (body, used) = Body::decode(opcode, &buf[HEADER_SIZE..])?;
        let options = PcpOption::decode_all(&buf[HEADER_SIZE + used..], opcode)?;
        Ok(Request { lifetime, client_addr, body, options })
    }
}

/// A PCP response (section 7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub opcode: Opcode,
    pub result: ResultCode,
    /// Granted lifetime on success; on error, how long until a retry may help.
    pub lifetime: u32,
    /// The server's epoch time in seconds (section 8.5).
    pub epoch: u32,
    /// `None` only for an error response too short to carry the payload
    /// (a server may answer e.g. UNSUPP_VERSION with the header alone).
    pub body: Option<Body>,
    pub options: Vec<PcpOption>,
}

impl Response {
    pub fn new(result: ResultCode, lifetime: u32, epoch: u32, body: Body) -> Self {
        Response { opcode: body.opcode(), result, lifetime, epoch, body: Some(body), options: Vec::new() }
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(VERSION);
        out.push(0x80 | self.opcode.to_u8());
        out.push(0);
        out.push(self.result.to_u8());
        out.extend_from_slice(&self.lifetime.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&[0; 12]);
        if let Some(body) = &self.body {
            body.encode(out);
        }
        for o in &self.options {
            o.encode(out);
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(HEADER_SIZE + PEER_PAYLOAD_SIZE);
        self.encode_into(&mut v);
        v
    }

    /// Strict decode, as a client does.
    pub fn decode(buf: &[u8]) -> Result<Response, WireError> {
        check_frame(buf)?;
        if buf[1] & 0x80 == 0 {
            return Err(WireError::WrongDirection { expected: "response" });
        }
        let opcode = opcode_of(buf[1])?;
        let result = ResultCode::from_u8(buf[3]).ok_or(WireError::UnknownResultCode(buf[3]))?;
        let lifetime = u32::from_be_bytes(buf[4..8].try_into().expect("4 bytes"));
        let epoch = u32::from_be_bytes(buf[8..12].try_into().expect("4 bytes"));
        let rest = &buf[HEADER_SIZE..];
        let (body, options) = match Body::decode(opcode, rest) {
            Ok((body, used)) => (Some(body), PcpOption::decode_all(&rest[used..], opcode)?),
            Err(_) if result != ResultCode::Success && rest.is_empty() => (None, Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(Response { opcode, result, lifetime, epoch, body, options })
    }
}
