//! Loss and soak: one client holds many short-lived mappings against the
//! test server losing a fraction of the datagrams each way, and must lose
//! none. Prints the renewals, the client process's memory and the driver
//! thread's CPU time per renewal.
//!
//! ```sh
//! cargo run --release -p pcp-core --example soak                 # 1000 mappings, 60 s, 30 % loss, 10 s lifetimes
//! cargo run --release -p pcp-core --example soak -- 1000 3600    # an hour
//! cargo run --release -p pcp-core --example soak -- MAPPINGS SECONDS LOSS LIFETIME
//! ```
//!
//! The suite (`pcp-core/tests/soak.rs`) runs the same code for a minute and
//! asserts correctness only; the CPU figure is for reading, not a test.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pcp_core::engine::RetransmitPolicy;
use pcp_core::server::{Server, ServerConfig};
use pcp_core::{Client, ClientConfig, Event, MapSpec, MappingId, Protocol};

/// What to run.
pub struct SoakParams {
    pub mappings: u16,
    pub duration: Duration,
    /// Fraction of datagrams lost, each way.
    pub loss: f64,
    /// Lifetime asked for and granted, in seconds.
    pub lifetime: u32,
}

/// What happened.
#[derive(Debug)]
pub struct SoakReport {
    pub granted: usize,
    pub renewals: u64,
    /// Mappings the client reported lost, with the error.
    pub lost: Vec<(MappingId, String)>,
    /// The fewest renewals any one mapping had.
    pub min_renewals_per_mapping: u64,
    /// The fewest mappings the server held at any once-a-second check.
    pub min_server_mappings: usize,
    /// Resident memory (KiB) after the first quarter of the run, and at its end.
    pub rss_kib: (u64, u64),
    /// CPU time of the client's driver thread over the run.
    pub driver_cpu: Duration,
    pub requests_received_by_server: u64,
}

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * sysconf(SysConf::PageSize) / 1024
}

enum SysConf {
    PageSize,
    ClockTick,
}

/// sysconf(3) on Unix. Elsewhere there is no /proc to read either (the
/// figures come out 0), so any value does.
fn sysconf(what: SysConf) -> u64 {
    #[cfg(unix)]
    {
        let name = match what {
            SysConf::PageSize => libc::_SC_PAGESIZE,
            SysConf::ClockTick => libc::_SC_CLK_TCK,
        };
        // SAFETY: sysconf has no preconditions.
        (unsafe { libc::sysconf(name) }).max(1) as u64
    }
    #[cfg(not(unix))]
    {
        match what {
            SysConf::PageSize => 4096,
            SysConf::ClockTick => 100,
        }
    }
}

/// CPU time (user + system) of this process's threads named `name`.
fn thread_cpu(name: &str) -> Duration {
    let tick = sysconf(SysConf::ClockTick) as f64;
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            ticks += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            ticks += f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    Duration::from_secs_f64(ticks as f64 / tick)
}

/// Runs the soak; every wait is bounded by `params.duration` plus the
/// creation deadline.
pub fn soak(params: &SoakParams) -> SoakReport {
    let server = Server::start(ServerConfig { min_lifetime: 1, ..ServerConfig::default() }).expect("test server");
    server.set_loss(params.loss).expect("a loss fraction from 0 to 1");
    let mut cc = ClientConfig::new(server.local_addr());
    cc.listen_announce = false;
    // Short lifetimes need short retransmission steps: a renewal has the
    // rest of the lifetime (3/8 of it at least) to get through the loss.
    cc.retransmit =
        RetransmitPolicy::rfc().with_initial(Duration::from_millis(100)).with_deadline(Duration::from_secs(30));
    cc.retransmit.max = Duration::from_millis(200);
    // RFC 6887 section 11.2.1 spaces renewals at least 4 s apart and halves
    // the time left between them: a handful of attempts per lifetime, too
    // few for 10 s lifetimes under 30 % loss each way. This test is about
    // loss, not that schedule (tests/engine_rfc.rs checks it), so it resends
    // unanswered renewals every 100 ms: with a round trip through 30 % loss
    // each way (49 % get through), a renewal started at 5/8 of the lifetime
    // gets 37 tries, all failing with odds of 0.51^37, about 1e-11 (at 200 ms,
    // 18 tries: 5e-6 a renewal, a few per cent over a run's 10,000 renewals,
    // and the test failed so once in six runs).
    cc.renewal_retry_interval = Some(Duration::from_millis(100));
    let client = Client::new(cc).expect("client");
    let events = client.events();

    let pending: Vec<_> = (0..params.mappings)
        .map(|i| client.map_async(MapSpec::new(Protocol::UDP, 20_000 + i).lifetime(params.lifetime)))
        .collect();
    let mappings: Vec<_> = pending.into_iter().map(|p| p.wait().expect("every mapping is granted")).collect();
    let mut renewals: HashMap<MappingId, u64> = mappings.iter().map(|m| (m.id(), 0)).collect();

    let start = Instant::now();
    let cpu_start = thread_cpu("pcp-driver");
    let mut report = SoakReport {
        granted: mappings.len(),
        renewals: 0,
        lost: Vec::new(),
        min_renewals_per_mapping: 0,
        min_server_mappings: usize::MAX,
        rss_kib: (0, 0),
        driver_cpu: Duration::ZERO,
        requests_received_by_server: 0,
    };
    let mut next_check = start;
    while start.elapsed() < params.duration {
        if let Ok(ev) = events.recv_timeout(Duration::from_millis(100)) {
            match ev {
                Event::Renewed(info) => {
                    *renewals.entry(info.id).or_default() += 1;
                    report.renewals += 1;
                }
                Event::Lost { id, error } => report.lost.push((id, error.to_string())),
                _ => {}
            }
        }
        if Instant::now() >= next_check {
            next_check += Duration::from_secs(1);
            report.min_server_mappings = report.min_server_mappings.min(server.mapping_count());
            if report.rss_kib.0 == 0 && start.elapsed() >= params.duration / 4 {
                report.rss_kib.0 = rss_kib();
            }
        }
    }
    report.driver_cpu = thread_cpu("pcp-driver").saturating_sub(cpu_start);
    report.rss_kib.1 = rss_kib();
    report.min_renewals_per_mapping = renewals.values().copied().min().unwrap_or(0);
    report.requests_received_by_server = server.requests_received();
    server.set_loss(0.0).expect("0 is a fraction");
    client.close();
    report
}

#[allow(dead_code)] // the test includes this file for soak() only
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: f64| args.get(i).and_then(|a| a.parse::<f64>().ok()).unwrap_or(d);
    let params = SoakParams {
        mappings: arg(0, 1000.0) as u16,
        duration: Duration::from_secs_f64(arg(1, 60.0)),
        loss: arg(2, 0.3),
        lifetime: arg(3, 10.0) as u32,
    };
    println!(
        "soak: {} mappings, {:?}, {:.0} % loss each way, {} s lifetimes",
        params.mappings,
        params.duration,
        params.loss * 100.0,
        params.lifetime
    );
    let r = soak(&params);
    println!(
        "granted {}, renewals {} (at least {} per mapping), lost {}",
        r.granted,
        r.renewals,
        r.min_renewals_per_mapping,
        r.lost.len()
    );
    println!(
        "server held at least {} mappings at every check; it received {} requests",
        r.min_server_mappings, r.requests_received_by_server
    );
    println!("memory (RSS): {} KiB after a quarter, {} KiB at the end", r.rss_kib.0, r.rss_kib.1);
    let per = if r.renewals > 0 { r.driver_cpu / r.renewals as u32 } else { Duration::ZERO };
    println!("driver thread CPU: {:?} in all, {:?} per renewal", r.driver_cpu, per);
    if !r.lost.is_empty() {
        std::process::exit(1);
    }
}
