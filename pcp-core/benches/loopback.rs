//! End-to-end targets on loopback, printed as numbers (a benchmark, not a
//! test: nothing here asserts on time). `cargo bench -p pcp-core --bench loopback`
//!
//! 1. sequential MAP round trips vs. plain UDP echo round trips (target >= 70 %),
//!    with the threads where the scheduler puts them, all on one CPU, and
//!    the servers on another CPU than the client (see `placements`);
//! 2. 10,000 mappings made concurrently by one client (target: all granted
//!    within 2 s, one driver thread, <= 1 KiB of client heap per mapping);
//! 3. a port that answers ICMP unreachable: error within 50 ms;
//! 4. a silent server: error at the configured deadline, within 10 %.
//!
//! The servers run in a child process (this binary re-executed with
//! `--serve`) so that the heap counted here is the client's alone.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use pcp_core::server::{Server, ServerConfig};
use pcp_core::{Client, ClientConfig, Error, MapSpec, Protocol};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static A: Counting = Counting;

fn serve() {
    // `--serve CPU`: pinned there (the server threads inherit it).
    if let Some(cpu) = std::env::args().skip_while(|a| a != "--serve").nth(1).and_then(|a| a.parse().ok()) {
        pin_to(Some(cpu));
    }
    let pcp = Server::start(ServerConfig { port_range: (1024, 65535), ..Default::default() }).unwrap();
    let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
    println!("{} {}", pcp.local_addr(), echo.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    std::thread::spawn(move || {
        let mut b = [0u8; 1500];
        while let Ok((n, from)) = echo.recv_from(&mut b) {
            let _ = echo.send_to(&b[..n], from);
        }
    });
    // Serve until the parent closes our stdin.
    let _ = std::io::stdin().read_line(&mut String::new());
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

/// Pins the calling thread (and the threads it starts afterwards) to `cpu`,
/// or gives it back the CPUs it had at the start. Linux only: elsewhere the
/// pinned placements run as the scheduler likes.
#[cfg(not(target_os = "linux"))]
fn pin_to(_cpu: Option<usize>) {}

/// Pins the calling thread (and the threads it starts afterwards) to `cpu`,
/// or gives it back the CPUs it had at the start.
#[cfg(target_os = "linux")]
fn pin_to(cpu: Option<usize>) {
    static ORIGINAL: std::sync::OnceLock<libc::cpu_set_t> = std::sync::OnceLock::new();
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: zeroed cpu_set_t values are empty sets, filled by the calls
    // that are given their size.
    unsafe {
        let original = ORIGINAL.get_or_init(|| {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::sched_getaffinity(0, size, &mut set);
            set
        });
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        match cpu {
            Some(c) => libc::CPU_SET(c, &mut set),
            None => set = *original,
        }
        libc::sched_setaffinity(0, size, &set);
    }
}

/// Starts the servers in a child process (pinned to `cpu`); returns it with
/// the PCP server's and the echo server's addresses.
fn spawn_servers(cpu: Option<usize>) -> (Child, SocketAddr, SocketAddr) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.arg("--serve");
    if let Some(c) = cpu {
        cmd.arg(c.to_string());
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let pcp_addr: SocketAddr = parts.next().unwrap().parse().unwrap();
    let echo_addr: SocketAddr = parts.next().unwrap().parse().unwrap();
    (child, pcp_addr, echo_addr)
}

fn stop_servers(mut child: Child) {
    drop(child.stdin.take());
    let _ = child.wait();
}

/// Median echo and MAP round trips per second over interleaved rounds (so
/// both see the same machine), `n` each.
fn round_trip_rates(pcp_addr: SocketAddr, echo_addr: SocketAddr, rounds: u16, n: u16) -> (f64, f64) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(echo_addr).unwrap();
    let msg = [0u8; 60];
    let mut buf = [0u8; 128];
    let client = client_for(pcp_addr);
    client.map(Protocol::UDP, 1).unwrap();
    let (mut echo, mut map) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let t = Instant::now();
        for _ in 0..n {
            sock.send(&msg).unwrap();
            sock.recv(&mut buf).unwrap();
        }
        echo.push(f64::from(n) / t.elapsed().as_secs_f64());
        let t = Instant::now();
        for i in 0..n {
            client.map(Protocol::TCP, 2 + round * n + i).unwrap();
        }
        map.push(f64::from(n) / t.elapsed().as_secs_f64());
    }
    client.close_keep();
    (median(&mut echo), median(&mut map))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn client_for(server: SocketAddr) -> Client {
    let mut cc = ClientConfig::new(server);
    cc.listen_announce = false;
    cc.delete_on_close = false;
    Client::new(cc).unwrap()
}

fn main() {
    if std::env::args().any(|a| a == "--serve") {
        return serve();
    }
    // `cargo bench` passes --bench; ignore other arguments.

    // 1. Round-trip rates. On loopback a round trip is two thread wake-ups,
    // and where the threads run decides the rates more than the work does:
    // a wake-up on another (idle) CPU costs more than the whole PCP
    // exchange. So echo and MAP are compared in each placement: as the
    // scheduler likes (it changes from run to run), all on CPU 0 (the cost
    // of the work), and client on CPU 0 with the servers on CPU 1 (a
    // wake-up across CPUs every time, as with a gateway elsewhere).
    let mut placements: Vec<(&str, Option<usize>, Option<usize>)> = vec![("unpinned", None, None)];
    if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
        placements.push(("one CPU", Some(0), Some(0)));
        placements.push(("two CPUs", Some(0), Some(1)));
    }
    let (rounds, n) = (5u16, 5000u16);
    println!("round trips: median of {rounds} interleaved rounds of {n}");
    for (name, client_cpu, server_cpu) in placements {
        let (child, pcp_addr, echo_addr) = spawn_servers(server_cpu);
        pin_to(client_cpu);
        let (echo, map) = round_trip_rates(pcp_addr, echo_addr, rounds, n);
        pin_to(None);
        stop_servers(child);
        let ratio = map / echo;
        println!(
            "  {name:<9} udp echo {echo:>7.0} /s, sequential MAP {map:>7.0} /s: {:>3.0} % of echo (target >= 70 %) {}",
            ratio * 100.0,
            verdict(ratio >= 0.7)
        );
    }

    let (child, pcp_addr, _) = spawn_servers(None);
    let n = 5000u16;
    // The same with an event callback registered: renewal events must not
    // slow the request path down.
    let client = client_for(pcp_addr);
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let s2 = seen.clone();
    client.on_event(move |_| {
        s2.fetch_add(1, Ordering::Relaxed);
    });
    let t = Instant::now();
    for i in 0..n {
        client.map(Protocol::TCP, 40_000 + i).unwrap();
    }
    let with_cb = f64::from(n) / t.elapsed().as_secs_f64();
    client.close_keep();
    let client = client_for(pcp_addr); // no callback registered
                                       // Completion handed to another thread, as an event-loop binding (Node,
                                       // asyncio) receives it: submit, then wait on a channel the callback feeds.
    let (tx, rx) = std::sync::mpsc::channel();
    let t = Instant::now();
    for i in 0..n {
        let tx = tx.clone();
        client.map_async(MapSpec::new(Protocol::TCP, 50_000 + i % 10_000)).on_complete(move |r| {
            let _ = tx.send(r.is_ok());
        });
        assert!(rx.recv().unwrap());
    }
    let handed_off = f64::from(n) / t.elapsed().as_secs_f64();
    // An event loop that reads the answers itself (attach_reader): it waits
    // for readability and calls process_ready, as the Node binding does.
    client.attach_reader();
    // The loop's poller, watching the client's socket (level-triggered, as
    // libuv's poll handle does).
    let poller = polling::Poller::new().unwrap();
    // SAFETY: the socket stays open until after the poller is dropped below.
    unsafe { poller.add_with_mode(client.reader_fd(), polling::Event::readable(0), polling::PollMode::Level) }.unwrap();
    let mut events = polling::Events::new();
    let t = Instant::now();
    for i in 0..n {
        let tx = tx.clone();
        client.map_async(MapSpec::new(Protocol::UDP, 50_000 + i % 10_000)).on_complete(move |r| {
            let _ = tx.send(r.is_ok());
        });
        loop {
            if let Ok(ok) = rx.try_recv() {
                assert!(ok);
                break;
            }
            events.clear();
            let _ = poller.wait(&mut events, Some(Duration::from_millis(100)));
            client.process_ready();
        }
    }
    let own_loop = f64::from(n) / t.elapsed().as_secs_f64();
    drop(poller);
    client.detach_reader();
    client.close_keep();
    println!("sequential MAP round trips, unpinned, other ways:");
    println!(
        "  the same with an event callback registered: {with_cb:.0} /s ({} events seen)",
        seen.load(Ordering::Relaxed)
    );
    println!("  the same completed through on_complete on the driver thread: {handed_off:.0} /s");
    println!("  the same read by the caller's own event loop (attach_reader): {own_loop:.0} /s");

    // 2. 10,000 concurrent mappings from one client.
    let before_threads = threads();
    let heap_before = LIVE.load(Ordering::Relaxed);
    let client = client_for(pcp_addr);
    let driver_threads = threads() - before_threads;
    let t = Instant::now();
    let pending: Vec<_> = (0..10_000u16).map(|i| client.map_async(MapSpec::new(Protocol::UDP, 20_000 + i))).collect();
    let mappings: Vec<_> = pending.into_iter().map(|p| p.wait()).collect::<Result<_, _>>().unwrap();
    let elapsed = t.elapsed();
    // What the client holds per mapping, without the Mapping handles we kept.
    drop(mappings);
    let per_mapping = (LIVE.load(Ordering::Relaxed) - heap_before) as f64 / 10_000.0;
    println!(
        "10,000 concurrent MAPs:     {:>9.3} s  (target <= 2 s) {}",
        elapsed.as_secs_f64(),
        verdict(elapsed <= Duration::from_secs(2))
    );
    println!("  driver threads for the client: {driver_threads} (target 1) {}", verdict(driver_threads == 1));
    println!("  client heap per mapping: {per_mapping:.0} bytes (target <= 1024) {}", verdict(per_mapping <= 1024.0));
    client.close_keep();

    // 3. ICMP port unreachable.
    let dead = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let c = client_for(dead);
    let t = Instant::now();
    let e = c.map(Protocol::TCP, 80).unwrap_err();
    let took = t.elapsed();
    assert_eq!(e, Error::ServerUnreachable);
    println!(
        "ICMP unreachable -> error:  {:>9.3} ms (target <= 50 ms) {}",
        took.as_secs_f64() * 1e3,
        verdict(took <= Duration::from_millis(50))
    );

    // 4. A silent server (a bound socket that never answers).
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let deadline = Duration::from_secs(1);
    let mut cc = ClientConfig::new(silent.local_addr().unwrap()).deadline(deadline);
    cc.listen_announce = false;
    let c = Client::new(cc).unwrap();
    let t = Instant::now();
    assert_eq!(c.map(Protocol::TCP, 80).unwrap_err(), Error::Timeout);
    let took = t.elapsed().as_secs_f64();
    let off = (took - 1.0).abs() / 1.0;
    println!(
        "silent server, 1 s deadline: {took:>7.3} s  ({:.1} % off; target within 10 %) {}",
        off * 100.0,
        verdict(off <= 0.1)
    );

    stop_servers(child);
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "OK"
    } else {
        "MISSED"
    }
}
