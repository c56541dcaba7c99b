//! The registry of error codes: the one list every shell derives its codes from.
//!
//! Each [`pcp_core::Error`](crate::Error) variant has one row here, found
//! with [`Error::error_code`](crate::Error::error_code). The C status values
//! and messages of `pcp-ffi`, the exception classes of the Python package
//! and the `err.code` values of the Node package are all read from
//! [`ErrorCode::ALL`]; each language's test suite checks that its list
//! equals this one.
//!
//! Adding a code: add the `Error` variant (error.rs), its arm in
//! `Error::error_code`, and one row in the `registry!` call below. The C
//! header also lists every status as an enum constant (cbindgen cannot
//! read this table): add `PCP_<NAME> = <c_status>` to `pcp_status` in
//! `pcp-ffi/src/status.rs`; its test fails until you do.

/// One error code, with what every shell shows of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode {
    /// The stable upper-case name: the RFC's for a server's result code
    /// (`NOT_AUTHORIZED`), else `TIMEOUT`, `CLOSED`, ... It is Node's
    /// `err.code`, Python's `PcpError.name` and C's `pcp_status_name`.
    pub name: &'static str,
    /// The PCP result code (RFC 6887 section 7.4) when a server's refusal.
    pub result_code: Option<u8>,
    /// The value of the C `pcp_status`: the result code itself for a
    /// refusal, 100 and up otherwise.
    pub c_status: i32,
    /// A short description without details (C's `pcp_status_message`);
    /// an error's own `Display` adds what is known about the case.
    pub summary: &'static str,
    /// Short-term (section 7.4): the same request may succeed later
    /// without a change of request or configuration.
    pub short_term: bool,
}

macro_rules! registry {
    ($($name:ident: $rc:expr, $c:literal, $short:literal, $summary:literal;)*) => {
        impl ErrorCode {
            $(
                #[doc = $summary]
                pub const $name: ErrorCode = ErrorCode {
                    name: stringify!($name),
                    result_code: $rc,
                    c_status: $c,
                    summary: $summary,
                    short_term: $short,
                };
            )*
            /// Every code, server result codes first in RFC order, then in the
            /// order of the `Error` variants.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),*];
        }
    };
}

registry! {
    // name: RFC result code, C status, short-term, summary
    UNSUPP_VERSION: Some(1), 1, false, "the server does not support PCP version 2 (UNSUPP_VERSION)";
    NOT_AUTHORIZED: Some(2), 2, false, "the server refused: not authorized (NOT_AUTHORIZED)";
    MALFORMED_REQUEST: Some(3), 3, false, "the server says the request was malformed (MALFORMED_REQUEST)";
    UNSUPP_OPCODE: Some(4), 4, false, "the server does not support this opcode (UNSUPP_OPCODE)";
    UNSUPP_OPTION: Some(5), 5, false, "the server does not support a mandatory option of the request (UNSUPP_OPTION)";
    MALFORMED_OPTION: Some(6), 6, false, "the server says an option was malformed (MALFORMED_OPTION)";
    NETWORK_FAILURE: Some(7), 7, true, "the server has a network failure; retry later (NETWORK_FAILURE)";
    NO_RESOURCES: Some(8), 8, true, "the server is out of resources; retry later (NO_RESOURCES)";
    UNSUPP_PROTOCOL: Some(9), 9, false, "the server does not support this protocol (UNSUPP_PROTOCOL)";
    USER_EX_QUOTA: Some(10), 10, true, "this host has used up its mapping quota on the server (USER_EX_QUOTA)";
    CANNOT_PROVIDE_EXTERNAL: Some(11), 11, false,
        "the server cannot provide the requested external address or port (CANNOT_PROVIDE_EXTERNAL)";
    ADDRESS_MISMATCH: Some(12), 12, false,
        "the request came from another address than the one inside it (ADDRESS_MISMATCH)";
    EXCESSIVE_REMOTE_PEERS: Some(13), 13, false, "the server refused: too many remote peers (EXCESSIVE_REMOTE_PEERS)";
    BAD_RESPONSE: None, 102, false, "bad response from the PCP server";
    TIMEOUT: None, 100, false, "no answer from the PCP server before the deadline";
    SERVER_UNREACHABLE: None, 101, false, "the PCP server is unreachable (nothing listens on its port)";
    NO_GATEWAY: None, 103, false, "no PCP server found";
    INVALID_ARGUMENT: None, 104, false, "invalid argument";
    IO: None, 106, false, "I/O error";
    CLOSED: None, 107, false, "the client is closed";
    CANCELLED: None, 108, false, "the operation was cancelled";
    UNSUPPORTED_BY_NATPMP: None, 109, false, "NAT-PMP cannot do this (UNSUPPORTED_BY_NATPMP)";
}

impl ErrorCode {
    /// The code with this stable name (exact, upper case).
    pub fn by_name(name: &str) -> Option<&'static ErrorCode> {
        ErrorCode::ALL.iter().find(|c| c.name == name)
    }

    /// The code of this C status value.
    pub fn by_c_status(status: i32) -> Option<&'static ErrorCode> {
        ErrorCode::ALL.iter().find(|c| c.c_status == status)
    }

    /// The code of this PCP result code (1..=13; `None` for SUCCESS).
    pub fn by_result_code(code: u8) -> Option<&'static ErrorCode> {
        ErrorCode::ALL.iter().find(|c| c.result_code == Some(code))
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;
    use crate::wire::ResultCode;

    #[test]
    fn names_and_values_are_unique() {
        for (i, a) in ErrorCode::ALL.iter().enumerate() {
            for b in &ErrorCode::ALL[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.c_status, b.c_status);
            }
        }
    }

    #[test]
    fn result_codes_agree_with_the_wire() {
        for rc in &ResultCode::ALL[1..] {
            let code = ErrorCode::by_result_code(rc.to_u8()).expect("every result code has a row");
            assert_eq!(code.name, rc.name());
            assert_eq!(code.short_term, rc.is_short_term(), "{}", code.name);
            assert_eq!(code.c_status, i32::from(rc.to_u8()));
        }
    }
}
