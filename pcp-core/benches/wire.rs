//! Codec speed: encode a MAP request, decode a MAP response (target: each
//! at most 100 ns). `cargo bench -p pcp-core --bench wire`

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{criterion_group, criterion_main, Criterion};
use pcp_core::wire::{Body, MapPayload, Nonce, Protocol, Request, Response, ResultCode};

fn bench(c: &mut Criterion) {
    let client: IpAddr = "192.168.1.100".parse().unwrap();
    let payload = MapPayload::new(Nonce::from_bytes([7; 12]), Protocol::TCP, 8080);
    let req = Request::map(client, 3600, payload);
    let mut buf = Vec::with_capacity(1100);
    c.bench_function("encode MAP request", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&req).encode_into(&mut buf);
            black_box(buf.len())
        })
    });
    let mut granted = payload;
    granted.external_port = 40000;
    granted.external_addr = "203.0.113.7".parse().unwrap();
    let resp = Response::new(ResultCode::Success, 3600, 1234, Body::Map(granted)).encode();
    c.bench_function("decode MAP response", |b| b.iter(|| Response::decode(black_box(&resp)).unwrap()));
}

criterion_group!(benches, bench);
criterion_main!(benches);
