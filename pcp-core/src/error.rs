//! The one error type of the crate.

use std::sync::Arc;

use crate::codes::ErrorCode;
use crate::wire::{ResultCode, WireError};

/// Everything that can go wrong, for every operation.
///
/// There is a variant for each PCP result code a server can answer (section
/// 7.4 of RFC 6887), and one for each way the exchange itself can fail. The
/// bindings map each variant to a C status, a Python exception class and a
/// Node `err.code`; [`Error::code`] is the stable name they share.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("the server does not support PCP version 2 (UNSUPP_VERSION){}", spoken_version(*server_version))]
    UnsuppVersion { server_version: u8 },
    #[error("the server refused: not authorized (NOT_AUTHORIZED){}", retry_hint(*retry_after))]
    NotAuthorized { retry_after: u32 },
    #[error("the server says the request was malformed (MALFORMED_REQUEST){}", retry_hint(*retry_after))]
    MalformedRequest { retry_after: u32 },
    #[error("the server does not support this opcode (UNSUPP_OPCODE){}", retry_hint(*retry_after))]
    UnsuppOpcode { retry_after: u32 },
    #[error("the server does not support a mandatory option of the request (UNSUPP_OPTION){}", retry_hint(*retry_after))]
    UnsuppOption { retry_after: u32 },
    #[error("the server says an option was malformed (MALFORMED_OPTION){}", retry_hint(*retry_after))]
    MalformedOption { retry_after: u32 },
    #[error("the server has a network failure; retry later (NETWORK_FAILURE){}", retry_hint(*retry_after))]
    NetworkFailure { retry_after: u32 },
    #[error("the server is out of resources; retry later (NO_RESOURCES){}", retry_hint(*retry_after))]
    NoResources { retry_after: u32 },
    #[error("the server does not support this protocol (UNSUPP_PROTOCOL){}", retry_hint(*retry_after))]
    UnsuppProtocol { retry_after: u32 },
    #[error("this host has used up its mapping quota on the server (USER_EX_QUOTA){}", retry_hint(*retry_after))]
    UserExQuota { retry_after: u32 },
    #[error("the server cannot provide the requested external address or port (CANNOT_PROVIDE_EXTERNAL){}", retry_hint(*retry_after))]
    CannotProvideExternal { retry_after: u32 },
    #[error("the server saw the request come from another address than the one inside it, e.g. through another NAT (ADDRESS_MISMATCH){}", retry_hint(*retry_after))]
    AddressMismatch { retry_after: u32 },
    #[error("the server refused: too many remote peers (EXCESSIVE_REMOTE_PEERS){}", retry_hint(*retry_after))]
    ExcessiveRemotePeers { retry_after: u32 },
    #[error("bad response from the server: {0}")]
    BadResponse(String),
    #[error("no answer from the PCP server before the deadline")]
    Timeout,
    #[error("the PCP server is unreachable (ICMP port unreachable: nothing listens on its port)")]
    ServerUnreachable,
    #[error("no PCP server found: {0}")]
    NoGateway(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("I/O error: {0}")]
    Io(Arc<std::io::Error>),
    #[error("the client is closed")]
    Closed,
    #[error("the operation was cancelled")]
    Cancelled,
    /// The gateway speaks only NAT-PMP (RFC 6886), which cannot do what was
    /// asked (PEER, THIRD_PARTY, FILTER, PREFER_FAILURE, a suggested
    /// external address, protocols other than TCP and UDP, IPv6); the
    /// payload names it.
    #[error("NAT-PMP cannot do this, and the gateway speaks only NAT-PMP (or the client is set to it): {0} (UNSUPPORTED_BY_NATPMP)")]
    UnsupportedByNatPmp(String),
}

/// Quotes what a user gave for an error message: in double quotes, and cut
/// to its first 40 characters (saying how long it was) so that a huge
/// argument does not make a huge message.
pub fn quote_input(input: &str) -> String {
    const MAX: usize = 40;
    if input.chars().count() <= MAX {
        format!("{input:?}")
    } else {
        let head: String = input.chars().take(MAX).collect();
        format!("{head:?}... ({} bytes)", input.len())
    }
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The `retry_after` field of a server refusal (every result-code error but
/// UNSUPP_VERSION), by reference or mutable reference as `$err` is; `None`
/// for other errors. One list of the variants for the getter and the setter.
macro_rules! refusal_retry_after {
    ($err:expr) => {
        match $err {
            Error::NotAuthorized { retry_after }
            | Error::MalformedRequest { retry_after }
            | Error::UnsuppOpcode { retry_after }
            | Error::UnsuppOption { retry_after }
            | Error::MalformedOption { retry_after }
            | Error::NetworkFailure { retry_after }
            | Error::NoResources { retry_after }
            | Error::UnsuppProtocol { retry_after }
            | Error::UserExQuota { retry_after }
            | Error::CannotProvideExternal { retry_after }
            | Error::AddressMismatch { retry_after }
            | Error::ExcessiveRemotePeers { retry_after } => Some(retry_after),
            _ => None,
        }
    };
}

impl Error {
    /// The error a server's non-success result code stands for; `None` for SUCCESS.
    pub fn from_result_code(code: ResultCode) -> Option<Error> {
        Error::from_result(code, 0)
    }

    /// The error a server's answer stands for, with the answer's lifetime:
    /// how long, in seconds, the server will keep refusing (section 8.3:
    /// the client does not send the same request again within it; after
    /// NO_RESOURCES, no new mapping request at all). `None` for SUCCESS.
    pub fn from_result(code: ResultCode, retry_after: u32) -> Option<Error> {
        Some(match code {
            ResultCode::Success => return None,
            ResultCode::UnsuppVersion => Error::UnsuppVersion { server_version: 2 },
            ResultCode::NotAuthorized => Error::NotAuthorized { retry_after },
            ResultCode::MalformedRequest => Error::MalformedRequest { retry_after },
            ResultCode::UnsuppOpcode => Error::UnsuppOpcode { retry_after },
            ResultCode::UnsuppOption => Error::UnsuppOption { retry_after },
            ResultCode::MalformedOption => Error::MalformedOption { retry_after },
            ResultCode::NetworkFailure => Error::NetworkFailure { retry_after },
            ResultCode::NoResources => Error::NoResources { retry_after },
            ResultCode::UnsuppProtocol => Error::UnsuppProtocol { retry_after },
            ResultCode::UserExQuota => Error::UserExQuota { retry_after },
            ResultCode::CannotProvideExternal => Error::CannotProvideExternal { retry_after },
            ResultCode::AddressMismatch => Error::AddressMismatch { retry_after },
            ResultCode::ExcessiveRemotePeers => Error::ExcessiveRemotePeers { retry_after },
        })
    }

    /// The server result code behind this error, if it came from one.
    pub fn result_code(&self) -> Option<ResultCode> {
        Some(match self {
            Error::UnsuppVersion { .. } => ResultCode::UnsuppVersion,
            Error::NotAuthorized { .. } => ResultCode::NotAuthorized,
            Error::MalformedRequest { .. } => ResultCode::MalformedRequest,
            Error::UnsuppOpcode { .. } => ResultCode::UnsuppOpcode,
            Error::UnsuppOption { .. } => ResultCode::UnsuppOption,
            Error::MalformedOption { .. } => ResultCode::MalformedOption,
            Error::NetworkFailure { .. } => ResultCode::NetworkFailure,
            Error::NoResources { .. } => ResultCode::NoResources,
            Error::UnsuppProtocol { .. } => ResultCode::UnsuppProtocol,
            Error::UserExQuota { .. } => ResultCode::UserExQuota,
            Error::CannotProvideExternal { .. } => ResultCode::CannotProvideExternal,
            Error::AddressMismatch { .. } => ResultCode::AddressMismatch,
            Error::ExcessiveRemotePeers { .. } => ResultCode::ExcessiveRemotePeers,
            _ => return None,
        })
    }

    /// The registry row of this error: its stable name, C status, summary
    /// and whether it is short-term (see [`ErrorCode`]).
    pub fn error_code(&self) -> &'static ErrorCode {
        match self {
            Error::UnsuppVersion { .. } => &ErrorCode::UNSUPP_VERSION,
            Error::NotAuthorized { .. } => &ErrorCode::NOT_AUTHORIZED,
            Error::MalformedRequest { .. } => &ErrorCode::MALFORMED_REQUEST,
            Error::UnsuppOpcode { .. } => &ErrorCode::UNSUPP_OPCODE,
            Error::UnsuppOption { .. } => &ErrorCode::UNSUPP_OPTION,
            Error::MalformedOption { .. } => &ErrorCode::MALFORMED_OPTION,
            Error::NetworkFailure { .. } => &ErrorCode::NETWORK_FAILURE,
            Error::NoResources { .. } => &ErrorCode::NO_RESOURCES,
            Error::UnsuppProtocol { .. } => &ErrorCode::UNSUPP_PROTOCOL,
            Error::UserExQuota { .. } => &ErrorCode::USER_EX_QUOTA,
            Error::CannotProvideExternal { .. } => &ErrorCode::CANNOT_PROVIDE_EXTERNAL,
            Error::AddressMismatch { .. } => &ErrorCode::ADDRESS_MISMATCH,
            Error::ExcessiveRemotePeers { .. } => &ErrorCode::EXCESSIVE_REMOTE_PEERS,
            Error::BadResponse(_) => &ErrorCode::BAD_RESPONSE,
            Error::Timeout => &ErrorCode::TIMEOUT,
            Error::ServerUnreachable => &ErrorCode::SERVER_UNREACHABLE,
            Error::NoGateway(_) => &ErrorCode::NO_GATEWAY,
            Error::InvalidArgument(_) => &ErrorCode::INVALID_ARGUMENT,
            Error::Io(_) => &ErrorCode::IO,
            Error::Closed => &ErrorCode::CLOSED,
            Error::Cancelled => &ErrorCode::CANCELLED,
            Error::UnsupportedByNatPmp(_) => &ErrorCode::UNSUPPORTED_BY_NATPMP,
        }
    }

    /// The stable upper-case name ([`ErrorCode::name`]): the RFC's name for
    /// server result codes, `TIMEOUT`, `SERVER_UNREACHABLE`, ... otherwise.
    pub fn code(&self) -> &'static str {
        self.error_code().name
    }

    /// An error of the given code with `detail` where the variant carries
    /// text: lets a shell's tests convert every code, including those no
    /// server can provoke.
    pub fn example(code: &ErrorCode, detail: &str) -> Error {
        if let Some(e) = code.result_code.and_then(ResultCode::from_u8).and_then(Error::from_result_code) {
            return e;
        }
        match code.name {
            "BAD_RESPONSE" => Error::BadResponse(detail.into()),
            "TIMEOUT" => Error::Timeout,
            "SERVER_UNREACHABLE" => Error::ServerUnreachable,
            "NO_GATEWAY" => Error::NoGateway(detail.into()),
            "IO" => Error::Io(Arc::new(std::io::Error::other(detail.to_string()))),
            "CLOSED" => Error::Closed,
            "CANCELLED" => Error::Cancelled,
            "UNSUPPORTED_BY_NATPMP" => Error::UnsupportedByNatPmp(detail.into()),
            _ => Error::InvalidArgument(detail.into()),
        }
    }

    /// For an error a server answered: how many seconds it said it will keep
    /// refusing (the error's lifetime, section 8.3); `None` for other errors.
    pub fn retry_after(&self) -> Option<u32> {
        refusal_retry_after!(self).copied()
    }

    /// The same error with another `retry_after` (for a refusal the engine
    /// replays from memory with the seconds left); other errors unchanged.
    pub(crate) fn with_retry_after(mut self, secs: u32) -> Error {
        if let Some(retry_after) = refusal_retry_after!(&mut self) {
            *retry_after = secs;
        }
        self
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Error {
        Error::InvalidArgument(msg.into())
    }
}

/// What an UNSUPP_VERSION answer said the server speaks, unless it is the
/// version it refused (a server answering in version 2 that it does not
/// speak version 2 says nothing more).
fn spoken_version(version: u8) -> String {
    match version {
        0 => ": it speaks version 0, i.e. NAT-PMP only".into(),
        2 => String::new(),
        v => format!(": it speaks version {v}"),
    }
}

/// The tail of a server error's message: when the server said to try again.
fn retry_hint(secs: u32) -> String {
    match secs {
        0 => String::new(),
        s => format!("; the server refuses such requests for {s} s"),
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(Arc::new(e))
    }
}

impl From<WireError> for Error {
    fn from(e: WireError) -> Self {
        Error::BadResponse(e.to_string())
    }
}

impl PartialEq for Error {
    /// Errors compare by kind (and payload where it is plain data); two I/O
    /// errors are equal when their kinds are.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Error::Io(a), Error::Io(b)) => a.kind() == b.kind(),
            (Error::UnsuppVersion { server_version: a }, Error::UnsuppVersion { server_version: b }) => a == b,
            (Error::BadResponse(a), Error::BadResponse(b))
            | (Error::NoGateway(a), Error::NoGateway(b))
            | (Error::InvalidArgument(a), Error::InvalidArgument(b))
            | (Error::UnsupportedByNatPmp(a), Error::UnsupportedByNatPmp(b)) => a == b,
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Error, ErrorCode};

    /// An UNSUPP_VERSION answer in version 2 says nothing of another
    /// version (it read "it speaks version 2").
    #[test]
    fn unsupp_version_names_only_another_version() {
        let says = |v| Error::UnsuppVersion { server_version: v }.to_string();
        assert!(!says(2).contains("speaks"), "{}", says(2));
        assert!(says(0).contains("NAT-PMP only") && says(1).contains("version 1"));
    }

    #[test]
    fn every_code_has_its_variant() {
        for code in ErrorCode::ALL {
            assert_eq!(Error::example(code, "x").error_code(), code, "{}", code.name);
        }
    }
}
