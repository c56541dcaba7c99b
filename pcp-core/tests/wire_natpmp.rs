//! NAT-PMP (RFC 6886) wire format: exact bytes of every message, every
//! validation error, round trips and robustness against arbitrary input.

use std::net::Ipv4Addr;

use pcp_core::wire::natpmp::*;
use pcp_core::wire::WireError;
use proptest::prelude::*;

#[test]
fn external_address_request_is_two_bytes() {
    assert_eq!(NatPmpRequest::ExternalAddress.encode(), vec![0, 0]);
    assert_eq!(NatPmpRequest::decode(&[0, 0]), Ok(NatPmpRequest::ExternalAddress));
}

#[test]
fn map_request_layout() {
    // Section 3.3: version, opcode (1 UDP, 2 TCP), reserved, internal port,
    // suggested external port, requested lifetime.
    let req = NatPmpRequest::Map {
        protocol: NatPmpProtocol::Udp,
        internal_port: 0x1234,
        suggested_port: 0x5678,
        lifetime: 7200,
    };
    assert_eq!(req.encode(), vec![0, 1, 0, 0, 0x12, 0x34, 0x56, 0x78, 0, 0, 0x1c, 0x20]);
    let tcp = NatPmpRequest::Map { protocol: NatPmpProtocol::Tcp, internal_port: 80, suggested_port: 0, lifetime: 0 };
    assert_eq!(tcp.encode()[1], 2);
    assert_eq!(NatPmpRequest::decode(&tcp.encode()), Ok(tcp));
}

#[test]
fn map_request_ignores_reserved_bytes() {
    let b = [0, 2, 0xaa, 0xbb, 0, 80, 0, 0, 0, 0, 0, 60];
    assert_eq!(
        NatPmpRequest::decode(&b),
        Ok(NatPmpRequest::Map { protocol: NatPmpProtocol::Tcp, internal_port: 80, suggested_port: 0, lifetime: 60 })
    );
}

#[test]
fn request_validation_errors() {
    assert_eq!(NatPmpRequest::decode(&[0]), Err(WireError::TooShort { len: 1, min: 2 }));
    assert_eq!(NatPmpRequest::decode(&[2, 1, 0, 0]), Err(WireError::WrongVersion(2)));
    assert_eq!(NatPmpRequest::decode(&[0, 128]), Err(WireError::WrongDirection { expected: "request" }));
    assert_eq!(NatPmpRequest::decode(&[0, 3]), Err(WireError::UnknownOpcode(3)));
    assert_eq!(NatPmpRequest::decode(&[0, 0, 0]), Err(WireError::NatPmpLength { opcode: 0, len: 3, expected: 2 }));
    assert_eq!(NatPmpRequest::decode(&[0, 1, 0, 0]), Err(WireError::NatPmpLength { opcode: 1, len: 4, expected: 12 }));
    assert_eq!(NatPmpRequest::decode(&vec![0; 1101]), Err(WireError::TooLong(1101)));
}

#[test]
fn external_address_response_layout() {
    let r = NatPmpResponse::ExternalAddress {
        result: NatPmpResult::Success,
        epoch: 0x01020304,
        external_addr: Ipv4Addr::new(203, 0, 113, 7),
    };
    assert_eq!(r.encode(), vec![0, 128, 0, 0, 1, 2, 3, 4, 203, 0, 113, 7]);
    assert_eq!(NatPmpResponse::decode(&r.encode()), Ok(r));
    assert_eq!(NatPmpResponse::announcement(0x01020304, Ipv4Addr::new(203, 0, 113, 7)), r);
}

#[test]
fn map_response_layout() {
    let r = NatPmpResponse::Map {
        protocol: NatPmpProtocol::Tcp,
        result: NatPmpResult::Success,
        epoch: 9,
        internal_port: 8080,
        external_port: 20000,
        lifetime: 7200,
    };
    assert_eq!(r.encode(), vec![0, 130, 0, 0, 0, 0, 0, 9, 0x1f, 0x90, 0x4e, 0x20, 0, 0, 0x1c, 0x20]);
    assert_eq!(NatPmpResponse::decode(&r.encode()), Ok(r));
    assert_eq!(r.request_opcode(), 2);
}

#[test]
fn unsupported_version_answer_is_eight_bytes() {
    // What a NAT-PMP gateway (miniupnpd, an AirPort) sends to a PCP MAP.
    let r = NatPmpResponse::unsupported_version(1, 77);
    assert_eq!(r.encode(), vec![0, 129, 0, 1, 0, 0, 0, 77]);
    assert_eq!(NatPmpResponse::decode(&r.encode()), Ok(r));
    assert_eq!(unsupported_version_epoch(&[0, 129, 0, 1, 0, 0, 0, 77]), Some(77));
    assert_eq!(unsupported_version_epoch(&[0, 128, 0, 1, 0, 0, 0, 5]), Some(5));
    // Not an unsupported-version answer: success, a PCP header, a request.
    assert_eq!(unsupported_version_epoch(&[0, 129, 0, 0, 0, 0, 0, 5]), None);
    assert_eq!(unsupported_version_epoch(&[2, 129, 0, 1, 0, 0, 0, 5]), None);
    assert_eq!(unsupported_version_epoch(&[0, 1, 0, 1, 0, 0, 0, 5]), None);
    // A malformed length does not count.
    assert_eq!(unsupported_version_epoch(&[0, 129, 0, 1, 0, 0, 0, 5, 0, 0]), None);
}

#[test]
fn every_result_code_decodes_in_full_and_header_form() {
    for (i, code) in NatPmpResult::ALL.iter().enumerate() {
        assert_eq!(code.to_u16() as usize, i);
        assert_eq!(NatPmpResult::from_u16(i as u16), Some(*code));
        let full = NatPmpResponse::Map {
            protocol: NatPmpProtocol::Udp,
            result: *code,
            epoch: 1,
            internal_port: 5,
            external_port: 0,
            lifetime: 0,
        };
        assert_eq!(NatPmpResponse::decode(&full.encode()), Ok(full));
        if *code != NatPmpResult::Success {
            let short = NatPmpResponse::Header { request_opcode: 1, result: *code, epoch: 1 };
            assert_eq!(short.encode().len(), 8);
            assert_eq!(NatPmpResponse::decode(&short.encode()), Ok(short));
        }
    }
    assert_eq!(NatPmpResult::from_u16(6), None);
}

#[test]
fn response_validation_errors() {
    assert_eq!(NatPmpResponse::decode(&[0, 128, 0, 0]), Err(WireError::TooShort { len: 4, min: 8 }));
    assert_eq!(NatPmpResponse::decode(&[1, 128, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]), Err(WireError::WrongVersion(1)));
    assert_eq!(
        NatPmpResponse::decode(&[0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]),
        Err(WireError::WrongDirection { expected: "response" })
    );
    assert_eq!(NatPmpResponse::decode(&[0, 128, 0, 6, 0, 0, 0, 0, 1, 2, 3, 4]), Err(WireError::NatPmpResultCode(6)));
    assert_eq!(NatPmpResponse::decode(&[0, 128, 1, 0, 0, 0, 0, 0, 1, 2, 3, 4]), Err(WireError::NatPmpResultCode(256)));
    // A success must carry its fields, exactly.
    assert_eq!(
        NatPmpResponse::decode(&[0, 128, 0, 0, 0, 0, 0, 0]),
        Err(WireError::NatPmpLength { opcode: 128, len: 8, expected: 12 })
    );
    assert_eq!(
        NatPmpResponse::decode(&[0, 129, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0]),
        Err(WireError::NatPmpLength { opcode: 129, len: 20, expected: 16 })
    );
    assert_eq!(NatPmpResponse::decode(&[0, 131, 0, 0, 0, 0, 0, 0]), Err(WireError::UnknownOpcode(3)));
    assert_eq!(NatPmpResponse::decode(&vec![0; 1101]), Err(WireError::TooLong(1101)));
}

#[test]
fn unsupported_opcode_answer_echoes_the_request() {
    // Section 3.5: the whole request comes back, R bit set, result 5.
    let b = [0, 0x80 | 9, 0, 5, 0, 0, 0, 3, 0xde, 0xad];
    assert_eq!(
        NatPmpResponse::decode(&b),
        Ok(NatPmpResponse::Header { request_opcode: 9, result: NatPmpResult::UnsupportedOpcode, epoch: 3 })
    );
}

#[test]
fn protocol_conversion() {
    use pcp_core::Protocol;
    assert_eq!(NatPmpProtocol::from_protocol(Protocol::TCP), Some(NatPmpProtocol::Tcp));
    assert_eq!(NatPmpProtocol::from_protocol(Protocol::UDP), Some(NatPmpProtocol::Udp));
    assert_eq!(NatPmpProtocol::from_protocol(Protocol::ALL), None);
    assert_eq!(NatPmpProtocol::from_protocol(Protocol(132)), None);
    assert_eq!(NatPmpProtocol::Tcp.protocol(), Protocol::TCP);
}

fn arb_protocol() -> impl Strategy<Value = NatPmpProtocol> {
    prop_oneof![Just(NatPmpProtocol::Udp), Just(NatPmpProtocol::Tcp)]
}

fn arb_result() -> impl Strategy<Value = NatPmpResult> {
    (0u16..6).prop_map(|c| NatPmpResult::from_u16(c).unwrap())
}

fn arb_request() -> impl Strategy<Value = NatPmpRequest> {
    prop_oneof![
        Just(NatPmpRequest::ExternalAddress),
        (arb_protocol(), any::<u16>(), any::<u16>(), any::<u32>()).prop_map(|(protocol, i, s, l)| {
            NatPmpRequest::Map { protocol, internal_port: i, suggested_port: s, lifetime: l }
        }),
    ]
}

fn arb_response() -> impl Strategy<Value = NatPmpResponse> {
    prop_oneof![
        (arb_result(), any::<u32>(), any::<[u8; 4]>()).prop_map(|(result, epoch, a)| {
            NatPmpResponse::ExternalAddress { result, epoch, external_addr: Ipv4Addr::from(a) }
        }),
        (arb_protocol(), arb_result(), any::<u32>(), any::<u16>(), any::<u16>(), any::<u32>()).prop_map(
            |(protocol, result, epoch, internal_port, external_port, lifetime)| NatPmpResponse::Map {
                protocol,
                result,
                epoch,
                internal_port,
                external_port,
                lifetime
            }
        ),
        (0u8..3, (1u16..6), any::<u32>()).prop_map(|(op, code, epoch)| NatPmpResponse::Header {
            request_opcode: op,
            result: NatPmpResult::from_u16(code).unwrap(),
            epoch
        }),
    ]
}

proptest! {
    #[test]
    fn requests_round_trip(req in arb_request()) {
        prop_assert_eq!(NatPmpRequest::decode(&req.encode()), Ok(req));
    }

    #[test]
    fn responses_round_trip(res in arb_response()) {
        prop_assert_eq!(NatPmpResponse::decode(&res.encode()), Ok(res));
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
        let _ = NatPmpRequest::decode(&bytes);
        let _ = NatPmpResponse::decode(&bytes);
        let _ = unsupported_version_epoch(&bytes);
    }

    #[test]
    fn decoders_never_panic_on_mutated_valid_messages(
        res in arb_response(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>())
    {
        let mut b = res.encode();
        for (i, v) in flips { let n = b.len(); b[i % n] = v; }
        let _ = NatPmpResponse::decode(&b);
        let n = cut % (b.len() + 1);
        let _ = NatPmpResponse::decode(&b[..n]);
        let _ = NatPmpRequest::decode(&b[..n]);
    }

    /// A PCP message is never taken for a NAT-PMP one, nor the reverse:
    /// the version byte tells them apart.
    #[test]
    fn pcp_and_natpmp_do_not_overlap(res in arb_response(), req in arb_request()) {
        prop_assert!(pcp_core::wire::Response::decode(&res.encode()).is_err());
        prop_assert!(pcp_core::wire::Request::decode(&req.encode()).is_err());
    }
}
