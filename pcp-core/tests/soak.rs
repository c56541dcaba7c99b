//! Loss and soak: 1000 mappings with 10-second lifetimes, held for a minute
//! against the test server losing 30 % of the datagrams each way. None may
//! be lost, every one is renewed (the server never lets one expire), and
//! memory stays flat. The longer run and the CPU figure:
//! `cargo run --release -p pcp-core --example soak -- 1000 3600`.
//! PCP_SOAK_SECS shortens or lengthens this test (default 60).

#[path = "../examples/soak.rs"]
mod soak;

use std::time::Duration;

#[test]
fn a_thousand_mappings_under_30_percent_loss_lose_none() {
    let secs: f64 = std::env::var("PCP_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60.0);
    let params = soak::SoakParams { mappings: 1000, duration: Duration::from_secs_f64(secs), loss: 0.3, lifetime: 10 };
    let r = soak::soak(&params);
    let per = if r.renewals > 0 { r.driver_cpu / r.renewals as u32 } else { Duration::ZERO };
    println!("{r:?}\ndriver CPU per renewal: {per:?}");
    assert_eq!(r.granted, 1000);
    assert!(r.lost.is_empty(), "lost {} mappings: {:?}", r.lost.len(), &r.lost[..r.lost.len().min(5)]);
    assert_eq!(r.min_server_mappings, 1000, "a mapping expired on the server: a renewal came too late");
    // Renewal comes at 1/2 to 5/8 of the 10 s lifetime: at least one a mapping per 6.25 s.
    let expected = (secs / 6.25).floor() as u64;
    assert!(
        r.min_renewals_per_mapping + 1 >= expected,
        "a mapping renewed only {} times in {secs} s",
        r.min_renewals_per_mapping
    );
    // Flat: no growth with the number of renewals (tens of thousands here).
    let growth = r.rss_kib.1.saturating_sub(r.rss_kib.0);
    assert!(growth < 16 * 1024, "memory grew by {growth} KiB from a quarter of the run to its end: {:?}", r.rss_kib);
}
