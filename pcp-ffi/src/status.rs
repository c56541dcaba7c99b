//! The C statuses: `pcp_status`, its names and messages, all read from the
//! core's registry of error codes (`pcp_core::ErrorCode`) except the three
//! that only the C API has (OK, BUFFER_TOO_SMALL, PANIC).

use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::catch_unwind;
use std::sync::OnceLock;

use pcp_core::{Error, ErrorCode};

/// What every fallible function returns.
///
/// Values 1 to 13 are the PCP result codes of RFC 6887 section 7.4, with
/// the same numbers: the server refused the request with that code. Values
/// from 100 on are failures of the exchange or of the call itself.
/// `pcp_status_message()` describes a status; `pcp_last_error()` gives the
/// detailed message of the last failure on the calling thread.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum pcp_status {
    /// Success.
    PCP_OK = 0,
    /// UNSUPP_VERSION: the server does not speak PCP version 2 (maybe NAT-PMP only).
    PCP_UNSUPP_VERSION = 1,
    /// NOT_AUTHORIZED: the server refused the request.
    PCP_NOT_AUTHORIZED = 2,
    /// MALFORMED_REQUEST.
    PCP_MALFORMED_REQUEST = 3,
    /// UNSUPP_OPCODE: the server does not support MAP or PEER.
    PCP_UNSUPP_OPCODE = 4,
    /// UNSUPP_OPTION: the server does not support a mandatory option.
    PCP_UNSUPP_OPTION = 5,
    /// MALFORMED_OPTION.
    PCP_MALFORMED_OPTION = 6,
    /// NETWORK_FAILURE: short-term; retry later.
    PCP_NETWORK_FAILURE = 7,
    /// NO_RESOURCES: short-term; retry later.
    PCP_NO_RESOURCES = 8,
    /// UNSUPP_PROTOCOL.
    PCP_UNSUPP_PROTOCOL = 9,
    /// USER_EX_QUOTA: this host has used up its mapping quota.
    PCP_USER_EX_QUOTA = 10,
    /// CANNOT_PROVIDE_EXTERNAL: the suggested external address or port is unavailable.
    PCP_CANNOT_PROVIDE_EXTERNAL = 11,
    /// ADDRESS_MISMATCH: the request came from another address than the one inside it.
    PCP_ADDRESS_MISMATCH = 12,
    /// EXCESSIVE_REMOTE_PEERS.
    PCP_EXCESSIVE_REMOTE_PEERS = 13,
    /// No answer from the server before the deadline.
    PCP_TIMEOUT = 100,
    /// Nothing listens on the server's port (ICMP port unreachable).
    PCP_SERVER_UNREACHABLE = 101,
    /// The server's answer was invalid.
    PCP_BAD_RESPONSE = 102,
    /// Discovery found no PCP server.
    PCP_NO_GATEWAY = 103,
    /// An argument is invalid (including a NULL pointer).
    PCP_INVALID_ARGUMENT = 104,
    /// The caller's buffer is too small; nothing was written.
    PCP_BUFFER_TOO_SMALL = 105,
    /// An operating-system I/O error.
    PCP_IO = 106,
    /// The client is closed.
    PCP_CLOSED = 107,
    /// The operation was cancelled.
    PCP_CANCELLED = 108,
    /// The gateway speaks only NAT-PMP (or the client is set to it), which
    /// cannot do what was asked: PEER, THIRD_PARTY, FILTER, PREFER_FAILURE,
    /// a suggested external address, protocols other than TCP and UDP, IPv6.
    PCP_UNSUPPORTED_BY_NATPMP = 109,
    /// A bug inside the library (a Rust panic, caught at the boundary).
    PCP_PANIC = 199,
}

impl pcp_status {
    /// Every constant of the enum (cbindgen needs it spelled out above;
    /// a test checks it against the core's registry).
    const ALL: [pcp_status; 25] = {
        use pcp_status::*;
        [
            PCP_OK,
            PCP_UNSUPP_VERSION,
            PCP_NOT_AUTHORIZED,
            PCP_MALFORMED_REQUEST,
            PCP_UNSUPP_OPCODE,
            PCP_UNSUPP_OPTION,
            PCP_MALFORMED_OPTION,
            PCP_NETWORK_FAILURE,
            PCP_NO_RESOURCES,
            PCP_UNSUPP_PROTOCOL,
            PCP_USER_EX_QUOTA,
            PCP_CANNOT_PROVIDE_EXTERNAL,
            PCP_ADDRESS_MISMATCH,
            PCP_EXCESSIVE_REMOTE_PEERS,
            PCP_TIMEOUT,
            PCP_SERVER_UNREACHABLE,
            PCP_BAD_RESPONSE,
            PCP_NO_GATEWAY,
            PCP_INVALID_ARGUMENT,
            PCP_BUFFER_TOO_SMALL,
            PCP_IO,
            PCP_CLOSED,
            PCP_CANCELLED,
            PCP_UNSUPPORTED_BY_NATPMP,
            PCP_PANIC,
        ]
    };
}

/// A status only the C API has, in the registry's shape.
const fn c_only(name: &'static str, c_status: i32, summary: &'static str) -> ErrorCode {
    ErrorCode { name, result_code: None, c_status, summary, short_term: false }
}

/// The statuses only the C API has.
const C_ONLY: [ErrorCode; 3] = [
    c_only("OK", 0, "success"),
    c_only("BUFFER_TOO_SMALL", 105, "the buffer is too small"),
    c_only("PANIC", 199, "internal error (panic) in pcp_rs"),
];

/// The status for a core error: the registry's C value.
pub(crate) fn status_of(e: &Error) -> pcp_status {
    let value = e.error_code().c_status;
    pcp_status::ALL.into_iter().find(|s| *s as i32 == value).unwrap_or(pcp_status::PCP_PANIC)
}

/// Name and message of every status as C strings, made once.
fn table() -> &'static [(i32, CString, CString)] {
    static TABLE: OnceLock<Vec<(i32, CString, CString)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let c = |s: &str| CString::new(s).unwrap_or_default();
        ErrorCode::ALL.iter().chain(&C_ONLY).map(|e| (e.c_status, c(e.name), c(e.summary))).collect()
    })
}

/// The name (`message` false) or message of a status, or `unknown`.
fn describe(status: c_int, message: bool, unknown: &'static CStr) -> *const c_char {
    let found =
        catch_unwind(|| table().iter().find(|r| r.0 == status).map(|r| if message { &r.2 } else { &r.1 }.as_ptr()));
    found.ok().flatten().unwrap_or(unknown.as_ptr())
}

/// A static description of a status (any value: unknown ones get
/// "unknown status"). Never NULL.
#[no_mangle]
pub extern "C" fn pcp_status_message(status: c_int) -> *const c_char {
    describe(status, true, c"unknown status")
}

/// The stable upper-case name of a status ("OK", "TIMEOUT", the RFC's name
/// for result codes, ...), the same names as the Python and Node bindings.
/// Never NULL.
#[no_mangle]
pub extern "C" fn pcp_status_name(status: c_int) -> *const c_char {
    describe(status, false, c"UNKNOWN")
}

/// Whether a status is a short-term refusal (RFC 6887 section 7.4:
/// NETWORK_FAILURE, NO_RESOURCES, USER_EX_QUOTA): the same request may
/// succeed later, after `pcp_last_retry_after` seconds. False for every
/// other status. Python's `short_term` and Node's `err.shortTerm`.
#[no_mangle]
pub extern "C" fn pcp_status_is_short_term(status: c_int) -> bool {
    ErrorCode::ALL.iter().any(|e| e.c_status == status && e.short_term)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    /// The header C programs compile against lists exactly the registry's
    /// codes plus the C-only ones, with the same values.
    #[test]
    fn header_lists_the_registry() {
        let header = include_str!("../../include/pcp.h");
        let start = header.find("typedef enum pcp_status {").expect("pcp_status in pcp.h");
        let body = &header[start..start + header[start..].find("} pcp_status;").expect("end of pcp_status")];
        let mut in_header: Vec<(String, i32)> = body
            .lines()
            .filter_map(|l| {
                let (name, value) = l.trim().trim_end_matches(',').split_once(" = ")?;
                Some((name.strip_prefix("PCP_")?.to_string(), value.parse().ok()?))
            })
            .collect();
        let mut expected: Vec<(String, i32)> =
            ErrorCode::ALL.iter().chain(&C_ONLY).map(|e| (e.name.to_string(), e.c_status)).collect();
        in_header.sort_by_key(|e| e.1);
        expected.sort_by_key(|e| e.1);
        assert_eq!(in_header, expected, "add the new code to pcp_status in pcp-ffi/src/status.rs and regenerate pcp.h");
        let mut in_enum: Vec<i32> = pcp_status::ALL.iter().map(|s| *s as i32).collect();
        in_enum.sort();
        assert_eq!(in_enum, expected.iter().map(|e| e.1).collect::<Vec<_>>());
    }

    #[test]
    fn every_core_error_has_its_status() {
        for code in ErrorCode::ALL {
            let status = status_of(&Error::example(code, "x"));
            assert_eq!(status as i32, code.c_status);
            let name = unsafe { CStr::from_ptr(pcp_status_name(status as c_int)) };
            assert_eq!(name.to_str().unwrap(), code.name);
        }
    }
}
