//! Decoder targets: no panic on any input, and decode(encode(x)) == x for
//! every x the decoder accepts.

use pcp_core::wire::{Request, Response, MAX_MESSAGE_SIZE};

/// The client's decoder (responses).
pub fn response_round_trip(data: &[u8]) {
    let Ok(decoded) = Response::decode(data) else { return };
    assert!(data.len() <= MAX_MESSAGE_SIZE && data.len().is_multiple_of(4), "accepted a badly framed response");
    let encoded = decoded.encode();
    assert!(encoded.len() <= data.len(), "re-encoding grew: {} -> {} bytes", data.len(), encoded.len());
    let again = Response::decode(&encoded).expect("a re-encoded response decodes");
    assert_eq!(again, decoded, "response round trip");
}

/// The server's decoder (requests).
pub fn request_round_trip(data: &[u8]) {
    let Ok(decoded) = Request::decode(data) else { return };
    assert!(data.len() <= MAX_MESSAGE_SIZE && data.len().is_multiple_of(4), "accepted a badly framed request");
    let encoded = decoded.encode();
    assert_eq!(encoded.len(), decoded.encoded_len());
    assert!(encoded.len() <= data.len(), "re-encoding grew: {} -> {} bytes", data.len(), encoded.len());
    let again = Request::decode(&encoded).expect("a re-encoded request decodes");
    assert_eq!(again, decoded, "request round trip");
}

/// The NAT-PMP (RFC 6886) decoders, both directions: no panic, and a round
/// trip for whatever they accept.
pub fn natpmp_round_trip(data: &[u8]) {
    use pcp_core::wire::natpmp::{NatPmpRequest, NatPmpResponse};
    if let Ok(decoded) = NatPmpResponse::decode(data) {
        let encoded = decoded.encode();
        assert!(encoded.len() <= data.len(), "re-encoding grew: {} -> {} bytes", data.len(), encoded.len());
        assert_eq!(NatPmpResponse::decode(&encoded).expect("a re-encoded response decodes"), decoded);
    }
    if let Ok(decoded) = NatPmpRequest::decode(data) {
        let encoded = decoded.encode();
        assert!(encoded.len() <= data.len(), "re-encoding grew: {} -> {} bytes", data.len(), encoded.len());
        assert_eq!(NatPmpRequest::decode(&encoded).expect("a re-encoded request decodes"), decoded);
    }
}
