//! The one error type of the crate.

use std::sync::Arc;

use crate::wire::{ResultCode, WireError};

/// Everything that can go wrong, for every operation.
///
/// There is a variant for each PCP result code a server can answer (section
/// 7.4 of RFC 6887), and one for each way the exchange itself can fail. The
/// bindings map each variant to a C status, a Python exception class and a
/// Node `err.code`; [`Error::code`] is the stable name they share.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("the server does not support PCP version 2 (it speaks version {server_version}{})",
        if *server_version == 0 { ", i.e. NAT-PMP only" } else { "" })]
    UnsuppVersion { server_version: u8 },
    #[error("the server refused: not authorized (NOT_AUTHORIZED)")]
    NotAuthorized,
    #[error("the server says the request was malformed (MALFORMED_REQUEST)")]
    MalformedRequest,
    #[error("the server does not support this opcode (UNSUPP_OPCODE)")]
    UnsuppOpcode,
    #[error("the server does not support a mandatory option of the request (UNSUPP_OPTION)")]
    UnsuppOption,
    #[error("the server says an option was malformed (MALFORMED_OPTION)")]
    MalformedOption,
    #[error("the server has a network failure; retry later (NETWORK_FAILURE)")]
    NetworkFailure,
    #[error("the server is out of resources; retry later (NO_RESOURCES)")]
    NoResources,
    #[error("the server does not support this protocol (UNSUPP_PROTOCOL)")]
    UnsuppProtocol,
    #[error("this host has used up its mapping quota on the server (USER_EX_QUOTA)")]
    UserExQuota,
    #[error("the server cannot provide the requested external address or port (CANNOT_PROVIDE_EXTERNAL)")]
    CannotProvideExternal,
    #[error("the server saw the request come from another address than the one inside it, e.g. through another NAT (ADDRESS_MISMATCH)")]
    AddressMismatch,
    #[error("the server refused: too many remote peers (EXCESSIVE_REMOTE_PEERS)")]
    ExcessiveRemotePeers,
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
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error a server's non-success result code stands for; `None` for SUCCESS.
    pub fn from_result_code(code: ResultCode) -> Option<Error> {
        Some(match code {
            ResultCode::Success => return None,
            ResultCode::UnsuppVersion => Error::UnsuppVersion { server_version: 2 },
            ResultCode::NotAuthorized => Error::NotAuthorized,
            ResultCode::MalformedRequest => Error::MalformedRequest,
            ResultCode::UnsuppOpcode => Error::UnsuppOpcode,
            ResultCode::UnsuppOption => Error::UnsuppOption,
            ResultCode::MalformedOption => Error::MalformedOption,
            ResultCode::NetworkFailure => Error::NetworkFailure,
            ResultCode::NoResources => Error::NoResources,
            ResultCode::UnsuppProtocol => Error::UnsuppProtocol,
            ResultCode::UserExQuota => Error::UserExQuota,
            ResultCode::CannotProvideExternal => Error::CannotProvideExternal,
            ResultCode::AddressMismatch => Error::AddressMismatch,
            ResultCode::ExcessiveRemotePeers => Error::ExcessiveRemotePeers,
        })
    }

    /// The server result code behind this error, if it came from one.
    pub fn result_code(&self) -> Option<ResultCode> {
        Some(match self {
            Error::UnsuppVersion { .. } => ResultCode::UnsuppVersion,
            Error::NotAuthorized => ResultCode::NotAuthorized,
            Error::MalformedRequest => ResultCode::MalformedRequest,
            Error::UnsuppOpcode => ResultCode::UnsuppOpcode,
            Error::UnsuppOption => ResultCode::UnsuppOption,
            Error::MalformedOption => ResultCode::MalformedOption,
            Error::NetworkFailure => ResultCode::NetworkFailure,
            Error::NoResources => ResultCode::NoResources,
            Error::UnsuppProtocol => ResultCode::UnsuppProtocol,
            Error::UserExQuota => ResultCode::UserExQuota,
            Error::CannotProvideExternal => ResultCode::CannotProvideExternal,
            Error::AddressMismatch => ResultCode::AddressMismatch,
            Error::ExcessiveRemotePeers => ResultCode::ExcessiveRemotePeers,
            _ => return None,
        })
    }

    /// A stable upper-case name: the RFC's name for server result codes,
    /// `TIMEOUT`, `SERVER_UNREACHABLE`, `BAD_RESPONSE`, `NO_GATEWAY`,
    /// `INVALID_ARGUMENT`, `IO`, `CLOSED`, `CANCELLED` otherwise.
    pub fn code(&self) -> &'static str {
        if let Some(rc) = self.result_code() {
            return rc.name();
        }
        match self {
            Error::BadResponse(_) => "BAD_RESPONSE",
            Error::Timeout => "TIMEOUT",
            Error::ServerUnreachable => "SERVER_UNREACHABLE",
            Error::NoGateway(_) => "NO_GATEWAY",
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::Io(_) => "IO",
            Error::Closed => "CLOSED",
            Error::Cancelled => "CANCELLED",
            _ => unreachable!("result codes handled above"),
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Error {
        Error::InvalidArgument(msg.into())
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
            | (Error::InvalidArgument(a), Error::InvalidArgument(b)) => a == b,
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}
