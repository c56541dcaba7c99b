//! Linux: an interface's IPv6 addresses and their flags from
//! `/proc/net/if_inet6` (one line per address: the address in 32 hex
//! digits, the interface index, the prefix length, the scope and the
//! `IFA_F_*` flags, each in hex, then the name). getifaddrs(3) has no
//! per-address flags, and this file is what netlink's RTM_GETADDR would
//! say, in the caller's network namespace, without a netlink socket.

use std::io;
use std::net::Ipv6Addr;

use super::Candidate;

/// `IFA_F_*` from linux/if_addr.h (the file shows the low 8 bits).
const IFA_F_TEMPORARY: u32 = 0x01;
const IFA_F_DADFAILED: u32 = 0x08;
const IFA_F_DEPRECATED: u32 = 0x20;
const IFA_F_TENTATIVE: u32 = 0x40;

pub(super) fn interface_candidates(ifindex: u32) -> io::Result<Vec<Candidate>> {
    match std::fs::read_to_string("/proc/net/if_inet6") {
        Ok(text) => Ok(parse_if_inet6(&text, ifindex)),
        // No IPv6 in this kernel or namespace: no addresses.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The addresses of interface `ifindex` in the text of `/proc/net/if_inet6`,
/// in the order listed; lines that do not parse are skipped.
pub(super) fn parse_if_inet6(text: &str, ifindex: u32) -> Vec<Candidate> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let addr = f.next()?;
            let index = u32::from_str_radix(f.next()?, 16).ok()?;
            let _prefix_len = f.next()?;
            let _scope = f.next()?;
            let flags = u32::from_str_radix(f.next()?, 16).ok()?;
            if index != ifindex || addr.len() != 32 {
                return None;
            }
            let addr = Ipv6Addr::from(u128::from_str_radix(addr, 16).ok()?);
            Some(Candidate {
                addr,
                temporary: flags & IFA_F_TEMPORARY != 0,
                deprecated: flags & IFA_F_DEPRECATED != 0,
                unusable: flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED) != 0,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source_addr::choose;

    /// What a host with SLAAC and privacy addresses shows: eth0 (index 2)
    /// has a link-local, a stable global, a temporary global, a
    /// deprecated older temporary one, a ULA and a tentative one; lo and
    /// eth1 have their own; one line is garbage.
    const SAMPLE: &str = "\
00000000000000000000000000000001 01 80 10 80       lo
fe80000000000000021122fffe334455 02 40 20 80     eth0
20010db800010000021122fffe334455 02 40 00 00     eth0
20010db80001000000000000000000aa 02 40 00 01     eth0
20010db80001000000000000000000bb 02 40 00 21     eth0
fd00000000000000021122fffe334455 02 40 00 00     eth0
20010db8000200000000000000000002 03 40 00 80     eth1
20010db8000100000000000000000cc1 02 40 00 40     eth0
not an address line
";

    #[test]
    fn parses_addresses_and_flags_of_one_interface() {
        let c = parse_if_inet6(SAMPLE, 2);
        let addrs: Vec<String> = c.iter().map(|c| c.addr.to_string()).collect();
        assert_eq!(
            addrs,
            [
                "fe80::211:22ff:fe33:4455",
                "2001:db8:1:0:211:22ff:fe33:4455",
                "2001:db8:1::aa",
                "2001:db8:1::bb",
                "fd00::211:22ff:fe33:4455",
                "2001:db8:1::cc1"
            ]
        );
        assert!(!c[1].temporary && !c[1].deprecated && !c[1].unusable);
        assert!(c[2].temporary && !c[2].deprecated);
        assert!(c[3].temporary && c[3].deprecated);
        assert!(c[5].unusable, "tentative");
        assert_eq!(choose(&c), Some("2001:db8:1:0:211:22ff:fe33:4455".parse().unwrap()));
    }

    #[test]
    fn chooses_the_stable_global_address_of_the_interface() {
        let text = "\
fe80000000000000021122fffe334455 02 40 20 80     eth0
20010db80001000000000000000000aa 02 40 00 01     eth0
fd000000000000000211000000000002 02 40 00 00     eth0
20010db8000100000211000000000002 02 40 00 00     eth0
20010db8000200000000000000000002 03 40 00 80     eth1
";
        assert_eq!(choose(&parse_if_inet6(text, 2)), Some("2001:db8:1:0:211::2".parse().unwrap()));
        assert_eq!(choose(&parse_if_inet6(text, 3)), Some("2001:db8:2::2".parse().unwrap()));
        assert_eq!(choose(&parse_if_inet6(text, 9)), None);
    }

    #[test]
    fn reads_this_hosts_file() {
        // Loopback's ::1 (index 1) is listed wherever IPv6 is on; either
        // way reading must not fail.
        let c = interface_candidates(1).expect("read /proc/net/if_inet6");
        assert!(c.iter().all(|c| c.addr == Ipv6Addr::LOCALHOST || !c.addr.is_loopback()));
    }
}
