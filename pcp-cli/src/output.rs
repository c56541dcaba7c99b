//! Human-readable or JSON output: one object per result or event.

use std::net::{IpAddr, SocketAddr};

use pcp_core::discovery::Discovered;
use pcp_core::{Error, Event, Mapping, MappingInfo, Nonce, Protocol, ProtocolVersion};
use serde_json::{json, Value};

fn human_version(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::Pcp => "PCP",
        ProtocolVersion::NatPmp => "NAT-PMP",
    }
}

pub struct Output {
    json: bool,
}

fn info_json(kind: &str, gateway: SocketAddr, i: &MappingInfo) -> Value {
    let mut v = json!({
        "event": kind,
        "gateway": gateway.to_string(),
        "mapping_id": i.id.0,
        "opcode": i.opcode.to_string(),
        "protocol": i.protocol.to_string(),
        "internal_ip": i.internal_addr.to_string(),
        "internal_port": i.internal_port,
        "external_ip": i.external_addr.to_string(),
        "external_port": i.external_port,
        "lifetime": i.lifetime,
        "epoch": i.epoch,
        "nonce": i.nonce.to_hex(),
        "protocol_version": i.version.name(),
    });
    if let Some((ip, port)) = i.remote {
        v["peer_ip"] = json!(ip.to_string());
        v["peer_port"] = json!(port);
    }
    v
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output { json }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    fn emit(&self, v: Value, human: String) {
        if self.json {
            println!("{v}");
        } else {
            println!("{human}");
        }
    }

    pub fn step(&self, text: &str) {
        if !self.json {
            println!("\n== {text}");
        }
    }

    pub fn discovered(&self, d: &Discovered) {
        self.emit(
            json!({"event": "discovered", "gateway": d.server.to_string(), "epoch": d.epoch, "internal_ip": d.internal_addr.to_string()}),
            format!("PCP server {} (epoch {}), our address {}", d.server, d.epoch, d.internal_addr),
        );
    }

    pub fn external_address(&self, gateway: SocketAddr, ip: IpAddr, version: ProtocolVersion) {
        self.emit(
            json!({"event": "external_address", "gateway": gateway.to_string(), "external_ip": ip.to_string(),
                   "protocol_version": version.name()}),
            format!("external address {ip} (via {gateway}, {})", human_version(version)),
        );
    }

    pub fn announce(&self, gateway: SocketAddr, epoch: u32, version: ProtocolVersion) {
        let what = match version {
            ProtocolVersion::Pcp => "ANNOUNCE",
            // Over NAT-PMP the external-address request stands in for it.
            ProtocolVersion::NatPmp => "the NAT-PMP address request",
        };
        self.emit(
            json!({"event": "announce", "gateway": gateway.to_string(), "epoch": epoch,
                   "protocol_version": version.name()}),
            format!("{gateway} answered {what}, epoch {epoch}"),
        );
    }

    pub fn mapping(&self, kind: &str, gateway: SocketAddr, m: &Mapping) {
        self.info(kind, gateway, m.info());
    }

    fn info(&self, kind: &str, gateway: SocketAddr, i: &MappingInfo) {
        let peer = i.remote.map(|(ip, p)| format!(" to peer {}", SocketAddr::new(ip, p))).unwrap_or_default();
        self.emit(
            info_json(kind, gateway, i),
            format!(
                "{kind}: {} {}:{} -> {}:{}{peer} for {} s ({}, epoch {}, nonce {})",
                i.protocol,
                i.internal_addr,
                i.internal_port,
                i.external_addr,
                i.external_port,
                i.lifetime,
                human_version(i.version),
                i.epoch,
                i.nonce
            ),
        );
    }

    pub fn deleted(&self, gateway: SocketAddr, protocol: Protocol, port: u16, nonce: Nonce) {
        self.emit(
            json!({"event": "deleted", "gateway": gateway.to_string(), "protocol": protocol.to_string(), "internal_port": port, "nonce": nonce.to_hex()}),
            format!("deleted {protocol} port {port} (nonce {nonce})"),
        );
    }

    /// `pcp delete` of a port no `pcp map` recorded: nothing was sent.
    pub fn not_mapped(&self, gateway: SocketAddr, protocol: Protocol, port: u16, third_party: Option<IpAddr>) {
        let whose = third_party.map(|t| format!(" for {t}")).unwrap_or_default();
        self.emit(
            json!({"event": "not_mapped", "gateway": gateway.to_string(), "protocol": protocol.to_string(), "internal_port": port, "third_party": third_party.map(|t| t.to_string())}),
            format!("nothing to delete: no mapping of {protocol} port {port}{whose} via {gateway} recorded by `pcp map`"),
        );
    }

    pub fn event(&self, gateway: SocketAddr, ev: &Event) {
        match ev {
            Event::Granted(i) => self.info("granted", gateway, i),
            Event::Renewed(i) => self.info("renewed", gateway, i),
            Event::Updated(i) => self.info("updated", gateway, i),
            Event::InternalAddressChanged { old, new } => self.emit(
                json!({"event": "internal_ip_changed", "gateway": gateway.to_string(), "old": old.to_string(), "new": new.to_string()}),
                format!("our address changed: {old} -> {new}: recreating mappings"),
            ),
            Event::Failed { id, error } => self.emit(
                json!({"event": "failed", "gateway": gateway.to_string(), "mapping_id": id.0, "error": error.code(), "message": error.to_string(), "retry_after": error.retry_after()}),
                format!("{id} failed: {error}"),
            ),
            Event::Lost { id, error } => self.emit(
                json!({"event": "lost", "gateway": gateway.to_string(), "mapping_id": id.0, "error": error.code(), "message": error.to_string()}),
                format!("{id} lost: {error}"),
            ),
            Event::Deleted { id, .. } => self.emit(
                json!({"event": "deleted", "gateway": gateway.to_string(), "mapping_id": id.0}),
                format!("{id} deleted"),
            ),
            Event::ExternalAddressChanged { old, new } => self.emit(
                json!({"event": "ip_changed", "gateway": gateway.to_string(), "old": old.to_string(), "new": new.to_string()}),
                format!("external address changed: {old} -> {new}"),
            ),
            Event::ServerRestarted { epoch } => self.emit(
                json!({"event": "server_restarted", "gateway": gateway.to_string(), "epoch": epoch}),
                format!("the server restarted (epoch {epoch}): recreating mappings"),
            ),
            Event::Announced { .. } | Event::ExternalAddress { .. } => {}
        }
    }

    pub fn serving(&self, addr: SocketAddr, external: IpAddr) {
        self.emit(
            json!({"event": "serving", "gateway": addr.to_string(), "external_ip": external.to_string()}),
            format!("PCP test server on {addr} (external address {external}); Ctrl-C to stop"),
        );
    }

    pub fn error(&self, e: &Error) {
        if self.json {
            eprintln!(
                "{}",
                json!({"event": "error", "error": e.code(), "message": e.to_string(), "retry_after": e.retry_after(), "short_term": e.error_code().short_term})
            );
        } else {
            eprintln!("pcp: error: {e}");
        }
    }
}
