use super::Opcode;

/// Every way a datagram can fail to be a valid PCP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("message is {len} bytes, shorter than the {min}-byte minimum")]
    TooShort { len: usize, min: usize },
    #[error("message is {0} bytes, over the 1100-byte maximum")]
    TooLong(usize),
    #[error("message length {0} is not a multiple of 4")]
    NotMultipleOf4(usize),
    #[error("unsupported PCP version {0}")]
    WrongVersion(u8),
    #[error("expected a {expected} but the R bit says otherwise")]
    WrongDirection { expected: &'static str },
    #[error("unknown opcode {0}")]
    UnknownOpcode(u8),
    #[error("unknown result code {0}")]
    UnknownResultCode(u8),
    #[error("{opcode} payload needs {need} bytes, only {have} present")]
    TruncatedPayload { opcode: Opcode, need: usize, have: usize },
    #[error("option {code} claims {len} bytes but only {remaining} remain")]
    OptionOverrun { code: u8, len: usize, remaining: usize },
    #[error("option {code} has length {len}, expected {expected}")]
    OptionLength { code: u8, len: usize, expected: usize },
    #[error("option {code} is not valid with opcode {opcode}")]
    OptionNotAllowed { code: u8, opcode: Opcode },
    #[error("option {0} appears more than once")]
    OptionRepeated(u8),
    #[error("FILTER prefix length {0} is out of range")]
    FilterPrefix(u8),
    #[error("unknown mandatory option {0}")]
    UnknownMandatoryOption(u8),
    #[error("option data of {0} bytes is too long for a PCP message")]
    OptionTooLong(usize),
    #[error("NAT-PMP message with opcode {opcode} is {len} bytes, expected {expected}")]
    NatPmpLength { opcode: u8, len: usize, expected: usize },
    #[error("unknown NAT-PMP result code {0}")]
    NatPmpResultCode(u16),
}
