//! Wire format: exact bytes, every validation error, round trips and
//! robustness against arbitrary input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pcp_core::wire::*;
use proptest::prelude::*;

fn v4(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn ipv4_mapped_addresses_both_ways() {
    let b = to_wire_address(v4("192.168.1.100"));
    assert_eq!(b, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xc0, 0xa8, 0x01, 0x64]);
    assert_eq!(from_wire_address(b), v4("192.168.1.100"));
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    assert_eq!(from_wire_address(to_wire_address(v6)), v6);
    // The all-zero suggestions of section 11.1: ::ffff:0.0.0.0 asks for IPv4, :: for IPv6.
    assert_eq!(to_wire_address(unspecified_external(v4("10.0.0.1")))[10..12], [0xff, 0xff]);
    assert_eq!(to_wire_address(unspecified_external(v6)), [0; 16]);
}

#[test]
fn map_request_exact_bytes() {
    let nonce = Nonce::from_bytes([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    let mut p = MapPayload::new(nonce, Protocol::TCP, 8080);
    p.external_port = 0x1f91;
    let req = Request::map(v4("192.168.1.100"), 7200, p);
    let b = req.encode();
    assert_eq!(b.len(), 60);
    assert_eq!(&b[0..4], &[2, 1, 0, 0]);
    assert_eq!(&b[4..8], &7200u32.to_be_bytes());
    assert_eq!(&b[8..24], &to_wire_address(v4("192.168.1.100")));
    assert_eq!(&b[24..36], nonce.as_bytes());
    assert_eq!(&b[36..40], &[6, 0, 0, 0]);
    assert_eq!(&b[40..42], &8080u16.to_be_bytes());
    assert_eq!(&b[42..44], &[0x1f, 0x91]);
    assert_eq!(&b[44..60], &to_wire_address(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
}

#[test]
fn response_header_fields() {
    let nonce = Nonce::from_bytes([9; 12]);
    let mut p = MapPayload::new(nonce, Protocol::UDP, 5000);
    p.external_port = 40000;
    p.external_addr = v4("203.0.113.7");
    let r = Response::new(ResultCode::NoResources, 30, 12345, Body::Map(p));
    let b = r.encode();
    assert_eq!(b[0], 2);
    assert_eq!(b[1], 0x81, "R bit and MAP opcode");
    assert_eq!(b[3], 8, "NO_RESOURCES");
    assert_eq!(&b[4..8], &30u32.to_be_bytes());
    assert_eq!(&b[8..12], &12345u32.to_be_bytes());
    assert_eq!(Response::decode(&b).unwrap(), r);
}

#[test]
fn every_result_code_round_trips() {
    for (i, code) in ResultCode::ALL.iter().enumerate() {
        assert_eq!(code.to_u8() as usize, i);
        assert_eq!(ResultCode::from_u8(i as u8), Some(*code));
        let r = Response::new(*code, 1, 2, Body::Announce);
        assert_eq!(Response::decode(&r.encode()).unwrap().result, *code);
    }
    assert_eq!(ResultCode::from_u8(14), None);
    let mut b = Response::new(ResultCode::Success, 0, 0, Body::Announce).encode();
    b[3] = 14;
    assert_eq!(Response::decode(&b), Err(WireError::UnknownResultCode(14)));
}

#[test]
fn options_encode_with_padding_and_decode() {
    let nonce = Nonce::from_bytes([3; 12]);
    let mut req = Request::map(v4("10.0.0.2"), 60, MapPayload::new(nonce, Protocol::TCP, 22));
    req.options = vec![
        PcpOption::ThirdParty(v4("10.0.0.9")),
        PcpOption::PreferFailure,
        PcpOption::Filter(Filter { remote_addr: v4("198.51.100.0"), prefix_len: 24, remote_port: 443 }),
        PcpOption::Filter(Filter { remote_addr: "2001:db8::".parse().unwrap(), prefix_len: 32, remote_port: 0 }),
        PcpOption::Unknown { code: 200, data: vec![1, 2, 3] },
    ];
    let b = req.encode();
    assert_eq!(b.len() % 4, 0);
    assert_eq!(b.len(), 60 + 20 + 4 + 24 + 24 + 8);
    // FILTER for IPv4 carries the prefix in the IPv4-mapped form: 96 + 24.
    let filter_at = 60 + 20 + 4;
    assert_eq!(b[filter_at], 3);
    assert_eq!(&b[filter_at + 2..filter_at + 4], &[0, 20]);
    assert_eq!(b[filter_at + 5], 120);
    assert_eq!(Request::decode(&b).unwrap(), req);
    assert!(!PcpOption::Unknown { code: 200, data: vec![] }.is_mandatory());
    assert!(PcpOption::Unknown { code: 5, data: vec![] }.is_mandatory());
}

fn announce_bytes() -> Vec<u8> {
    Request::announce(v4("127.0.0.1")).encode()
}

#[test]
fn every_framing_error() {
    assert_eq!(Request::decode(&[2, 0, 0]), Err(WireError::TooShort { len: 3, min: 24 }));
    assert_eq!(Request::decode(&vec![0u8; 1104]), Err(WireError::TooLong(1104)));
    let mut b = announce_bytes();
    b.push(0);
    assert_eq!(Request::decode(&b), Err(WireError::NotMultipleOf4(25)));
    let mut b = announce_bytes();
    b[0] = 1;
    assert_eq!(Request::decode(&b), Err(WireError::WrongVersion(1)));
    let mut b = announce_bytes();
    b[1] = 0x80;
    assert_eq!(Request::decode(&b), Err(WireError::WrongDirection { expected: "request" }));
    assert_eq!(Response::decode(&announce_bytes()), Err(WireError::WrongDirection { expected: "response" }));
    let mut b = announce_bytes();
    b[1] = 5;
    assert_eq!(Request::decode(&b), Err(WireError::UnknownOpcode(5)));
    // A MAP header without its payload.
    let mut b = announce_bytes();
    b[1] = 1;
    assert_eq!(Request::decode(&b), Err(WireError::TruncatedPayload { opcode: Opcode::Map, need: 36, have: 0 }));
}

fn map_with_raw_option(opt: &[u8]) -> Vec<u8> {
    let mut b = Request::map(v4("127.0.0.1"), 60, MapPayload::new(Nonce::default(), Protocol::TCP, 1)).encode();
    b.extend_from_slice(opt);
    b
}

#[test]
fn every_option_error() {
    // Claims 16 bytes, has 4.
    let b = map_with_raw_option(&[1, 0, 0, 16, 0, 0, 0, 0]);
    assert_eq!(Request::decode(&b), Err(WireError::OptionOverrun { code: 1, len: 16, remaining: 4 }));
    // PREFER_FAILURE must be empty.
    let b = map_with_raw_option(&[2, 0, 0, 4, 0, 0, 0, 0]);
    assert_eq!(Request::decode(&b), Err(WireError::OptionLength { code: 2, len: 4, expected: 0 }));
    // PREFER_FAILURE twice.
    let b = map_with_raw_option(&[2, 0, 0, 0, 2, 0, 0, 0]);
    assert_eq!(Request::decode(&b), Err(WireError::OptionRepeated(2)));
    // FILTER prefix over 128.
    let mut f = vec![3, 0, 0, 20, 0, 129, 0, 80];
    f.extend_from_slice(&[0; 16]);
    assert_eq!(Request::decode(&map_with_raw_option(&f)), Err(WireError::FilterPrefix(129)));
    // PREFER_FAILURE is for MAP only.
    let peer = PeerPayload {
        nonce: Nonce::default(),
        protocol: Protocol::TCP,
        internal_port: 1,
        external_port: 0,
        external_addr: v4("0.0.0.0"),
        remote_port: 80,
        remote_addr: v4("198.51.100.1"),
    };
    let mut b = Request::peer(v4("127.0.0.1"), 60, peer).encode();
    b.extend_from_slice(&[2, 0, 0, 0]);
    assert_eq!(Request::decode(&b), Err(WireError::OptionNotAllowed { code: 2, opcode: Opcode::Peer }));
}

#[test]
fn header_only_error_response_has_no_body() {
    let mut b = vec![2, 0x81, 0, ResultCode::MalformedRequest.to_u8()];
    b.extend_from_slice(&[0; 20]);
    let r = Response::decode(&b).unwrap();
    assert_eq!(r.body, None);
    // A success must carry its payload.
    b[3] = 0;
    assert!(matches!(Response::decode(&b), Err(WireError::TruncatedPayload { .. })));
}

#[test]
fn nonce_hex_round_trip() {
    let n = Nonce::from_bytes([0xab; 12]);
    assert_eq!(Nonce::from_hex(&n.to_hex()), Some(n));
    let n = Nonce::from_bytes([0x00, 0x01, 0x0f, 0x10, 0x7f, 0x80, 0x9a, 0xbc, 0xde, 0xf0, 0xff, 0x42]);
    assert_eq!(n.to_hex(), "00010f107f809abcdef0ff42");
    assert_eq!(Nonce::from_hex("00010f107f809abcdef0ff42"), Some(n));
    assert_eq!(Nonce::from_hex("zz"), None);
}

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>()
            .prop_filter("not v4-mapped", |b| Ipv6Addr::from(*b).to_ipv4_mapped().is_none())
            .prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ]
}

fn arb_filter() -> impl Strategy<Value = Filter> {
    (arb_ip(), any::<u8>(), any::<u16>()).prop_map(|(remote_addr, p, remote_port)| {
        let max = if remote_addr.is_ipv4() { 33 } else { 129 };
        Filter { remote_addr, prefix_len: p % max, remote_port }
    })
}

fn arb_body() -> impl Strategy<Value = Body> {
    let common = || (any::<[u8; 12]>(), any::<u8>(), any::<u16>(), any::<u16>(), arb_ip());
    prop_oneof![
        Just(Body::Announce),
        common().prop_map(|(n, p, i, e, a)| Body::Map(MapPayload {
            nonce: Nonce::from_bytes(n),
            protocol: Protocol(p),
            internal_port: i,
            external_port: e,
            external_addr: a
        })),
        (common(), any::<u16>(), arb_ip()).prop_map(|((n, p, i, e, a), rp, ra)| Body::Peer(PeerPayload {
            nonce: Nonce::from_bytes(n),
            protocol: Protocol(p),
            internal_port: i,
            external_port: e,
            external_addr: a,
            remote_port: rp,
            remote_addr: ra
        })),
    ]
}

/// Options valid for the body's opcode.
fn arb_options(body: Body) -> BoxedStrategy<Vec<PcpOption>> {
    let unknown = (128u8..=255, proptest::collection::vec(any::<u8>(), 0..12))
        .prop_map(|(code, data)| PcpOption::Unknown { code, data });
    match body {
        Body::Announce => proptest::collection::vec(unknown, 0..3).boxed(),
        Body::Peer(_) => (proptest::option::of(arb_ip()), proptest::collection::vec(unknown, 0..2))
            .prop_map(|(tp, mut rest)| {
                let mut v: Vec<PcpOption> = tp.map(PcpOption::ThirdParty).into_iter().collect();
                v.append(&mut rest);
                v
            })
            .boxed(),
        Body::Map(_) => (
            proptest::option::of(arb_ip()),
            any::<bool>(),
            proptest::collection::vec(arb_filter(), 0..4),
            proptest::collection::vec(unknown, 0..2),
        )
            .prop_map(|(tp, pf, filters, mut rest)| {
                let mut v: Vec<PcpOption> = tp.map(PcpOption::ThirdParty).into_iter().collect();
                if pf {
                    v.push(PcpOption::PreferFailure);
                }
                v.extend(filters.into_iter().map(PcpOption::Filter));
                v.append(&mut rest);
                v
            })
            .boxed(),
    }
}

fn normalise(mut o: Vec<PcpOption>) -> Vec<PcpOption> {
    // A FILTER with prefix 0 means "any address": its family is not kept on the wire.
    for opt in &mut o {
        if let PcpOption::Filter(f) = opt {
            if f.prefix_len == 0 {
                f.remote_addr = from_wire_address(to_wire_address(f.remote_addr));
            }
        }
    }
    o
}

proptest! {
    #[test]
    fn requests_round_trip((body, options) in arb_body().prop_flat_map(|b| (Just(b), arb_options(b))),
                           lifetime in any::<u32>(), client in arb_ip()) {
        let req = Request { lifetime, client_addr: client, body, options: normalise(options) };
        let bytes = req.encode();
        prop_assert_eq!(bytes.len(), req.encoded_len());
        prop_assert_eq!(bytes.len() % 4, 0);
        prop_assert_eq!(Request::decode(&bytes).unwrap(), req);
    }

    #[test]
    fn responses_round_trip((body, options) in arb_body().prop_flat_map(|b| (Just(b), arb_options(b))),
                            code in 0u8..14, lifetime in any::<u32>(), epoch in any::<u32>()) {
        let mut r = Response::new(ResultCode::from_u8(code).unwrap(), lifetime, epoch, body);
        r.options = normalise(options);
        prop_assert_eq!(Response::decode(&r.encode()).unwrap(), r);
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
        let _ = Request::decode(&bytes);
        let _ = Response::decode(&bytes);
    }

    #[test]
    fn decoders_never_panic_on_mutated_valid_messages(
        (body, options) in arb_body().prop_flat_map(|b| (Just(b), arb_options(b))),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>())
    {
        let mut b = Request { lifetime: 1, client_addr: IpAddr::V4(Ipv4Addr::LOCALHOST), body, options }.encode();
        for (i, v) in flips { let n = b.len(); b[i % n] = v; }
        let _ = Request::decode(&b);
        b[1] |= 0x80;
        let _ = Response::decode(&b);
        let n = cut % (b.len() + 1);
        let _ = Response::decode(&b[..n]);
        let _ = Request::decode(&b[..n]);
    }
}
