//! Whether a SUCCESS that matches a request can be used as a mapping.
//!
//! A matched answer the client cannot honour ends its request at once with
//! `BAD_RESPONSE` naming what is wrong (issue 10 item 9, issue 13 defect 1),
//! rather than being dropped and turning into a TIMEOUT much later.

use std::net::IpAddr;

use crate::wire::{MappingFields, PcpOption};

use super::entry::Template;
use crate::wire::canonical;

/// Why a SUCCESS granting `lifetime` seconds with these fields cannot be
/// used for the request `template`; `None` when it can.
pub(super) fn unusable_grant(template: &Template, lifetime: u32, f: &MappingFields) -> Option<String> {
    if lifetime == 0 {
        // Section 11.4/12.3: a SUCCESS to a create or renewal grants a lifetime.
        return Some("the server answered SUCCESS with a lifetime of 0 s to a request for a mapping".into());
    }
    // Section 11.1: port 0 stands for "all ports" only where we asked for it.
    if template.protocol.has_ports() && template.internal_port != 0 && f.external_port == 0 {
        return Some(format!("the server granted external port 0 for {} port {}", template.protocol, f.internal_port));
    }
    let external = canonical(f.external_addr);
    if let Some(why) = unreachable_address(external) {
        return Some(format!("the server granted external address {external}, {why}"));
    }
    // Section 11.1: the suggested external address names the family we asked for.
    let wanted_v4 = canonical(template.suggested_addr).is_ipv4();
    if wanted_v4 != external.is_ipv4() {
        let (got, want) = if wanted_v4 { ("IPv6", "IPv4") } else { ("IPv4", "IPv6") };
        return Some(format!(
            "the server granted external address {external}, an {got} address, to a request for {want}"
        ));
    }
    None
}

/// Why nobody could reach a mapping at `ip`, if so.
fn unreachable_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        _ if ip.is_unspecified() => Some("which is the unspecified address"),
        _ if ip.is_multicast() => Some("which is a multicast address"),
        IpAddr::V4(v4) if v4.is_broadcast() => Some("which is the broadcast address"),
        _ => None,
    }
}

/// Section 13.2: with PREFER_FAILURE a server that cannot map the suggested
/// external port and address must answer CANNOT_PROVIDE_EXTERNAL, not make
/// another mapping. Why a SUCCESS with these fields is a mapping `template`
/// asked not to get; `None` when it is what was suggested, or when the
/// request did not carry the option. The address counts only when one was
/// suggested (not the unspecified address of "either family's any").
pub(super) fn unwanted_grant(template: &Template, f: &MappingFields) -> Option<String> {
    if !template.options.contains(&PcpOption::PreferFailure) {
        return None;
    }
    if template.suggested_port != 0 && f.external_port != template.suggested_port {
        return Some(format!(
            "with PREFER_FAILURE the server granted external port {} instead of the suggested {} for {} port {} \
             (RFC 6887 section 13.2: it must answer CANNOT_PROVIDE_EXTERNAL)",
            f.external_port, template.suggested_port, template.protocol, template.internal_port
        ));
    }
    let suggested = canonical(template.suggested_addr);
    let granted = canonical(f.external_addr);
    if !suggested.is_unspecified() && granted != suggested {
        return Some(format!(
            "with PREFER_FAILURE the server granted external address {granted} instead of the suggested {suggested} \
             (RFC 6887 section 13.2: it must answer CANNOT_PROVIDE_EXTERNAL)"
        ));
    }
    None
}
