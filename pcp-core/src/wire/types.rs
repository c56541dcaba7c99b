use std::fmt;

use rand::RngCore;

/// PCP opcodes (RFC 6887 section 19.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opcode {
    Announce,
    Map,
    Peer,
}

impl Opcode {
    /// The 7-bit value on the wire.
    pub fn to_u8(self) -> u8 {
        match self {
            Opcode::Announce => 0,
            Opcode::Map => 1,
            Opcode::Peer => 2,
        }
    }

    /// `None` for an opcode this client does not know.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Opcode::Announce),
            1 => Some(Opcode::Map),
            2 => Some(Opcode::Peer),
            _ => None,
        }
    }
}

impl Opcode {
    /// "ANNOUNCE", "MAP" or "PEER".
    pub fn name(self) -> &'static str {
        match self {
            Opcode::Announce => "ANNOUNCE",
            Opcode::Map => "MAP",
            Opcode::Peer => "PEER",
        }
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The result codes of RFC 6887 section 7.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultCode {
    Success,
    UnsuppVersion,
    NotAuthorized,
    MalformedRequest,
    UnsuppOpcode,
    UnsuppOption,
    MalformedOption,
    NetworkFailure,
    NoResources,
    UnsuppProtocol,
    UserExQuota,
    CannotProvideExternal,
    AddressMismatch,
    ExcessiveRemotePeers,
}

impl ResultCode {
    /// Every result code, in wire order.
    pub const ALL: [ResultCode; 14] = [
        ResultCode::Success,
        ResultCode::UnsuppVersion,
        ResultCode::NotAuthorized,
        ResultCode::MalformedRequest,
        ResultCode::UnsuppOpcode,
        ResultCode::UnsuppOption,
        ResultCode::MalformedOption,
        ResultCode::NetworkFailure,
        ResultCode::NoResources,
        ResultCode::UnsuppProtocol,
        ResultCode::UserExQuota,
        ResultCode::CannotProvideExternal,
        ResultCode::AddressMismatch,
        ResultCode::ExcessiveRemotePeers,
    ];

    pub fn to_u8(self) -> u8 {
        ResultCode::ALL.iter().position(|c| *c == self).unwrap_or(0) as u8
    }

    /// `None` for a code outside 0..=13.
    pub fn from_u8(v: u8) -> Option<Self> {
        ResultCode::ALL.get(v as usize).copied()
    }

    /// The code named `name` (the RFC's name, in any case: what the test
    /// servers of every shell take for a forced result).
    pub fn from_name(name: &str) -> Option<Self> {
        ResultCode::ALL.iter().copied().find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// The RFC's name, e.g. `NOT_AUTHORIZED`.
    pub fn name(self) -> &'static str {
        match self {
            ResultCode::Success => "SUCCESS",
            ResultCode::UnsuppVersion => "UNSUPP_VERSION",
            ResultCode::NotAuthorized => "NOT_AUTHORIZED",
            ResultCode::MalformedRequest => "MALFORMED_REQUEST",
            ResultCode::UnsuppOpcode => "UNSUPP_OPCODE",
            ResultCode::UnsuppOption => "UNSUPP_OPTION",
            ResultCode::MalformedOption => "MALFORMED_OPTION",
            ResultCode::NetworkFailure => "NETWORK_FAILURE",
            ResultCode::NoResources => "NO_RESOURCES",
            ResultCode::UnsuppProtocol => "UNSUPP_PROTOCOL",
            ResultCode::UserExQuota => "USER_EX_QUOTA",
            ResultCode::CannotProvideExternal => "CANNOT_PROVIDE_EXTERNAL",
            ResultCode::AddressMismatch => "ADDRESS_MISMATCH",
            ResultCode::ExcessiveRemotePeers => "EXCESSIVE_REMOTE_PEERS",
        }
    }

    /// Short-term errors (section 7.4) may go away by themselves; the rest
    /// need a change of request or configuration.
    pub fn is_short_term(self) -> bool {
        matches!(self, ResultCode::NetworkFailure | ResultCode::NoResources | ResultCode::UserExQuota)
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An IANA protocol number; 0 means "all protocols".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Protocol(pub u8);

impl Protocol {
    pub const ALL: Protocol = Protocol(0);
    pub const TCP: Protocol = Protocol(6);
    pub const UDP: Protocol = Protocol(17);

    /// Whether the protocol has ports (a MAP for another protocol must use port 0).
    pub fn has_ports(self) -> bool {
        matches!(self.0, 6 | 17 | 33 | 132)
    }

    /// Parses `tcp`, `udp`, `all` or a number.
    pub fn parse(s: &str) -> Option<Protocol> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Some(Protocol::TCP),
            "udp" => Some(Protocol::UDP),
            "all" | "any" => Some(Protocol::ALL),
            n => n.parse().ok().map(Protocol),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("all"),
            6 => f.write_str("tcp"),
            17 => f.write_str("udp"),
            n => write!(f, "{n}"),
        }
    }
}

/// The 96-bit mapping nonce of MAP and PEER (section 11.1).
///
/// One nonce identifies one mapping for its whole life: renewals and the
/// delete reuse it, and servers refuse them otherwise.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Nonce([u8; 12]);

impl Nonce {
    pub fn from_bytes(b: [u8; 12]) -> Self {
        Nonce(b)
    }

    pub fn as_bytes(&self) -> &[u8; 12] {
        &self.0
    }

    /// A fresh nonce from the given CSPRNG.
    pub fn random(rng: &mut impl RngCore) -> Self {
        let mut b = [0u8; 12];
        rng.fill_bytes(&mut b);
        Nonce(b)
    }

    /// Lower-case hex, 24 characters.
    pub fn to_hex(&self) -> String {
        // One allocation: bindings call this for every mapping they report.
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(24);
        for b in self.0 {
            s.push(char::from(DIGITS[usize::from(b >> 4)]));
            s.push(char::from(DIGITS[usize::from(b & 0xf)]));
        }
        s
    }

    /// Parses the 24-character hex form produced by [`Nonce::to_hex`].
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 24 || !s.is_ascii() {
            return None;
        }
        let mut b = [0u8; 12];
        for (i, out) in b.iter_mut().enumerate() {
            *out = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Nonce(b))
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({})", self.to_hex())
    }
}

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_codes_are_found_by_name_in_any_case() {
        for code in ResultCode::ALL {
            assert_eq!(ResultCode::from_name(code.name()), Some(code));
            assert_eq!(ResultCode::from_name(&code.name().to_ascii_lowercase()), Some(code));
        }
        assert_eq!(ResultCode::from_name("NO_SUCH_CODE"), None);
    }
}
