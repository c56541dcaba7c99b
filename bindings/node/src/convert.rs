//! JavaScript values to core types, and core results to messages.

use super::*;

/// A protocol as JavaScript gives it: a number or a name (`'tcp'`).
pub(crate) type ProtocolArg = Either<f64, String>;

pub(crate) type Tsfn = ThreadsafeFunction<NativeMessage, Unknown<'static>, NativeMessage, Status, false, true>;

pub(crate) fn invalid(msg: impl Into<String>) -> PcpError {
    PcpError::InvalidArgument(msg.into())
}

/// A synchronous error as "CODE\0message" (lib/errors.js makes it a `PCPError`;
/// a server's refusal, with its retry time, only ever arrives as a message).
pub(crate) fn napi_err(e: PcpError) -> napi::Error {
    napi::Error::new(Status::InvalidArg, format!("{}\u{0}{}", e.code(), e))
}

pub(crate) use pcp_core::config::whole_number as whole;

pub(crate) fn port(v: f64, what: &str) -> Result<u16, PcpError> {
    whole(v, what, 65535).map(|p| p as u16)
}

/// A protocol number, or its name or number as text (the core's rule).
pub(crate) fn protocol(v: &ProtocolArg) -> Result<Protocol, PcpError> {
    match v {
        Either::A(n) => whole(*n, "protocol", 255).map(|p| Protocol(p as u8)),
        Either::B(s) => pcp_core::config::parse_protocol(s, "protocol"),
    }
}

/// The core's one rule for address text (as in C and the CLI): trimmed,
/// one optional pair of brackets.
pub(crate) fn ip(s: &str, what: &str) -> Result<IpAddr, PcpError> {
    pcp_core::config::parse_ip(s, what)
}

pub(crate) fn lifetime(v: Option<f64>) -> Result<u32, PcpError> {
    v.map_or(Ok(pcp_core::config::DEFAULT_LIFETIME), |l| whole(l, "lifetime", u32::MAX))
}

/// A JavaScript number of milliseconds as a `Duration`; whether the value
/// makes sense for the setting is the core's `validate` to say.
pub(crate) fn millis(v: f64, what: &str) -> Result<Duration, PcpError> {
    if (0.0..=1e15).contains(&v) {
        Ok(Duration::from_secs_f64(v / 1000.0))
    } else {
        Err(invalid(format!("{what} must be a number of milliseconds, not {v}")))
    }
}

/// The client's retransmission policy with the deadline of one request.
pub(crate) fn request_deadline(client: &Client, ms: f64) -> Result<pcp_core::RetransmitPolicy, PcpError> {
    let policy = client.config().retransmit.with_deadline(millis(ms, "deadline")?);
    policy.validate()?;
    Ok(policy)
}

pub(crate) fn nonce(s: &str) -> Result<Nonce, PcpError> {
    pcp_core::config::parse_nonce(s, "nonce")
}

/// The client's settings from `server` and its options (checked by the core's `validate`).
pub(crate) fn client_config(server: &str, o: ClientOptions) -> Result<ClientConfig> {
    let mut cc = ClientConfig::new(parse_server(server)?);
    if let Some(d) = o.deadline {
        cc = cc.deadline(millis(d, "deadline")?);
    }
    cc.listen_announce = o.listen_announce.unwrap_or(cc.listen_announce);
    cc.delete_on_close = o.delete_on_close.unwrap_or(cc.delete_on_close);
    cc.close_timeout = opt_millis(o.close_timeout, "closeTimeout")?.unwrap_or(cc.close_timeout);
    cc.local_addr = opt(&o.local_address, |a| ip(a, "localAddress"))?.or(cc.local_addr);
    cc.announce_port = o.announce_port.map(|p| port(p, "announcePort")).transpose()?.unwrap_or(cc.announce_port);
    cc.announce_delay_max = opt_millis(o.announce_delay_max, "announceDelayMax")?.unwrap_or(cc.announce_delay_max);
    if let Some(p) = &o.protocol {
        cc.protocol = pcp_core::config::parse_protocol_choice(p, "protocol")?;
    }
    if let Some(n) = o.max_retransmissions {
        cc.retransmit.max_retransmissions = Some(whole(n, "maxRetransmissions", u32::MAX)?);
    }
    Ok(cc)
}

/// Discovery's settings from its options.
pub(crate) fn discovery_config(o: DiscoverOptions) -> Result<DiscoveryConfig> {
    let d = DiscoveryConfig::default();
    let addrs = |list: Vec<String>| list.iter().map(|s| parse_server(s)).collect::<Result<Vec<_>>>();
    Ok(DiscoveryConfig {
        gateways: o.candidates.map(addrs).transpose()?,
        servers: o.servers.map(addrs).transpose()?.unwrap_or(d.servers),
        deadline: opt_millis(o.deadline, "deadline")?.unwrap_or(d.deadline),
        initial_timeout: opt_millis(o.initial_timeout, "initialTimeout")?.unwrap_or(d.initial_timeout),
    })
}

fn opt_millis(v: Option<f64>, what: &str) -> Result<Option<Duration>> {
    v.map(|v| millis(v, what)).transpose()
}

/// An optional string option converted by `f` (an address, a nonce).
pub(crate) fn opt<T>(v: &Option<String>, f: impl Fn(&str) -> Result<T, PcpError>) -> Result<Option<T>, PcpError> {
    v.as_deref().map(f).transpose()
}

/// The MAP request of `o` (also the shared part of a PEER, and what names a
/// mapping to delete by nonce: RFC 6887 section 15).
pub(crate) fn map_spec(o: &RequestOptions, client: &Client) -> Result<MapSpec> {
    let mut spec = MapSpec::new(protocol(&o.protocol)?, port(o.internal_port, "internalPort")?)
        .external_port(port(o.external_port.unwrap_or(0.0), "externalPort")?)
        .lifetime(lifetime(o.lifetime)?)
        .external_addr(opt(&o.external_address, |a| ip(a, "externalAddress"))?)
        .prefer_failure_if(o.prefer_failure.unwrap_or(false))
        .third_party(opt(&o.third_party, |a| ip(a, "thirdParty"))?)
        .nonce(opt(&o.nonce, nonce)?)
        .retransmit(o.deadline.map(|d| request_deadline(client, d)).transpose()?);
    for f in o.filters.iter().flatten() {
        let remote_addr = ip(&f.remote_address, "filter remoteAddress")?;
        let remote_port = port(f.remote_port.unwrap_or(0.0), "filter remotePort")?;
        let mut filter = Filter { remote_addr, prefix_len: 0, remote_port };
        // Omitted: the whole address. Too long for the family: the core's check.
        filter.prefix_len = match f.prefix_length {
            Some(p) => whole(p, "filter prefixLength", 255)? as u8,
            None => filter.max_prefix(),
        };
        spec = spec.filter(filter);
    }
    Ok(spec)
}

/// The PEER request of `o`.
pub(crate) fn peer_spec(o: &RequestOptions, client: &Client) -> Result<PeerSpec> {
    let remote = o
        .remote_address
        .as_deref()
        .ok_or_else(|| invalid("remoteAddress must be an IP address string, got undefined"))?;
    let remote_port =
        o.remote_port.ok_or_else(|| invalid("remotePort: undefined is not a whole number from 0 to 65535"))?;
    map_spec(o, client)?.into_peer(ip(remote, "remoteAddress")?, port(remote_port, "remotePort")?)
}

/// The core's events that reach JavaScript, under their Node names; the
/// others are the events of request results, which arrive as the results.
const EVENTS: [(&str, &str); 8] = [
    ("renewed", "renewed"),
    ("updated", "updated"),
    ("lost", "lost"),
    ("failed", "failed"),
    ("deleted", "deleted"),
    ("ip_changed", "ipChanged"),
    ("internal_ip_changed", "internalIpChanged"),
    ("server_restarted", "serverRestarted"),
];

/// The Node names of the events (lib/args.js listens for these).
#[napi]
pub fn event_names() -> Vec<&'static str> {
    EVENTS.iter().map(|(_, node)| *node).collect()
}

/// An event as its message (the core's flat view of it), or None for the
/// events of request results.
pub(crate) fn event_message(ev: &Event) -> Option<NativeMessage> {
    let (_, kind) = EVENTS.iter().find(|(core, _)| *core == ev.name())?;
    let mut m = NativeMessage::new(kind);
    if let Some(e) = ev.error() {
        m = m.error(e);
    }
    m.id = ev.mapping_id().map(|id| id.0 as f64);
    m.mapping = ev.mapping().map(MappingData::from);
    m.epoch = ev.epoch();
    m.old_address = ev.old_address().map(|a| a.to_string());
    m.address = ev.new_address().map(|a| a.to_string());
    Some(m)
}
