use std::net::IpAddr;

use super::address::{from_wire_address, to_wire_address};
use super::{Opcode, WireError};

const THIRD_PARTY: u8 = 1;
const PREFER_FAILURE: u8 = 2;
const FILTER: u8 = 3;

/// A FILTER option (section 13.3): only traffic from `remote_addr/prefix_len`
/// and `remote_port` (0 = any port) may use the mapping.
///
/// `prefix_len` counts bits of the address in its own family (0..=32 for
/// IPv4, 0..=128 for IPv6); the wire form's IPv4-mapped offset of 96 is added
/// and removed by the codec. A prefix length of 0 means any address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Filter {
    pub remote_addr: IpAddr,
    pub prefix_len: u8,
    pub remote_port: u16,
}

impl Filter {
    /// The largest prefix length for the address family of `remote_addr`.
    pub fn max_prefix(&self) -> u8 {
        if self.remote_addr.is_ipv4() {
            32
        } else {
            128
        }
    }
}

/// A PCP option (section 7.3, 13).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PcpOption {
    /// Ask on behalf of another host (MAP, PEER).
    ThirdParty(IpAddr),
    /// Fail rather than assign another external port than suggested (MAP).
    PreferFailure,
    /// Restrict who may reach the mapping (MAP; may repeat).
    Filter(Filter),
    /// An option this crate does not interpret, kept as it came.
    Unknown { code: u8, data: Vec<u8> },
}

impl PcpOption {
    pub fn code(&self) -> u8 {
        match self {
            PcpOption::ThirdParty(_) => THIRD_PARTY,
            PcpOption::PreferFailure => PREFER_FAILURE,
            PcpOption::Filter(_) => FILTER,
            PcpOption::Unknown { code, .. } => *code,
        }
    }

    /// Codes 0-127 must be understood by the receiver; 128-255 may be skipped.
    pub fn is_mandatory(&self) -> bool {
        self.code() < 128
    }

    /// Bytes this option takes on the wire, header and padding included.
    pub fn encoded_len(&self) -> usize {
        4 + padded(self.data_len())
    }

    fn data_len(&self) -> usize {
        match self {
            PcpOption::ThirdParty(_) => 16,
            PcpOption::PreferFailure => 0,
            PcpOption::Filter(_) => 20,
            PcpOption::Unknown { data, .. } => data.len(),
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let len = self.data_len();
        out.push(self.code());
        out.push(0);
        out.extend_from_slice(&(len.min(u16::MAX as usize) as u16).to_be_bytes());
        match self {
            PcpOption::ThirdParty(ip) => out.extend_from_slice(&to_wire_address(*ip)),
            PcpOption::PreferFailure => {}
            PcpOption::Filter(f) => {
                out.push(0);
                let wire_prefix =
                    if f.remote_addr.is_ipv4() { f.prefix_len.min(32) + 96 } else { f.prefix_len.min(128) };
                // Prefix 0 means "no filter" on the wire, whatever the family.
                out.push(if f.prefix_len == 0 { 0 } else { wire_prefix });
                out.extend_from_slice(&f.remote_port.to_be_bytes());
                out.extend_from_slice(&to_wire_address(f.remote_addr));
            }
            PcpOption::Unknown { data, .. } => out.extend_from_slice(data),
        }
        out.resize(out.len() + padded(len) - len, 0);
    }

    /// Decodes the options area of a message sent with `opcode`.
    pub(crate) fn decode_all(mut buf: &[u8], opcode: Opcode) -> Result<Vec<PcpOption>, WireError> {
        let mut options = Vec::new();
        let (mut seen_third_party, mut seen_prefer_failure) = (false, false);
        while !buf.is_empty() {
            if buf.len() < 4 {
                return Err(WireError::OptionOverrun { code: buf[0], len: 4, remaining: buf.len() });
            }
            let code = buf[0];
            let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
            let rest = &buf[4..];
            if rest.len() < len {
                return Err(WireError::OptionOverrun { code, len, remaining: rest.len() });
            }
            let data = &rest[..len];
            let option = match code {
                THIRD_PARTY => {
                    check_opcode(code, opcode, &[Opcode::Map, Opcode::Peer])?;
                    check_len(code, len, 16)?;
                    if std::mem::replace(&mut seen_third_party, true) {
                        return Err(WireError::OptionRepeated(code));
                    }
                    PcpOption::ThirdParty(from_wire_address(data.try_into().expect("16 bytes")))
                }
                PREFER_FAILURE => {
                    check_opcode(code, opcode, &[Opcode::Map])?;
                    check_len(code, len, 0)?;
                    if std::mem::replace(&mut seen_prefer_failure, true) {
                        return Err(WireError::OptionRepeated(code));
                    }
                    PcpOption::PreferFailure
                }
                FILTER => {
                    check_opcode(code, opcode, &[Opcode::Map])?;
                    check_len(code, len, 20)?;
                    let wire_prefix = data[1];
                    if wire_prefix > 128 {
                        return Err(WireError::FilterPrefix(wire_prefix));
                    }
                    let remote_addr = from_wire_address(data[4..20].try_into().expect("16 bytes"));
                    let prefix_len = match remote_addr {
                        IpAddr::V4(_) if wire_prefix == 0 => 0,
                        IpAddr::V4(_) if wire_prefix < 96 => return Err(WireError::FilterPrefix(wire_prefix)),
                        IpAddr::V4(_) => wire_prefix - 96,
                        IpAddr::V6(_) => wire_prefix,
                    };
                    PcpOption::Filter(Filter {
                        remote_addr,
                        prefix_len,
                        remote_port: u16::from_be_bytes([data[2], data[3]]),
                    })
                }
                _ => PcpOption::Unknown { code, data: data.to_vec() },
            };
            options.push(option);
            // The last option's padding may be cut short only if nothing follows.
            let consumed = (4 + padded(len)).min(buf.len());
            buf = &buf[consumed..];
        }
        Ok(options)
    }
}

fn padded(len: usize) -> usize {
    (len + 3) & !3
}

fn check_len(code: u8, len: usize, expected: usize) -> Result<(), WireError> {
    if len == expected {
        Ok(())
    } else {
        Err(WireError::OptionLength { code, len, expected })
    }
}

fn check_opcode(code: u8, opcode: Opcode, allowed: &[Opcode]) -> Result<(), WireError> {
    if allowed.contains(&opcode) {
        Ok(())
    } else {
        Err(WireError::OptionNotAllowed { code, opcode })
    }
}
