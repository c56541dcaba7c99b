//! `NativeServer`: the core's test server.

use super::*;

#[derive(Default)]
#[napi(object)]
pub struct ServerOptions {
    /// Where to listen (default "127.0.0.1:0": an ephemeral loopback port).
    pub listen: Option<String>,
    /// The external IPv4 address handed out (default 203.0.113.7).
    pub external_address: Option<String>,
    pub min_lifetime: Option<u32>,
    pub max_lifetime: Option<u32>,
    pub port_range_start: Option<u32>,
    pub port_range_end: Option<u32>,
    pub allow_third_party: Option<bool>,
    /// The epoch at start, as for a gateway that has been up a while (a
    /// reboot starts again from 0, so a client can tell it restarted).
    pub initial_epoch: Option<u32>,
    /// `"both"` (default), `"pcp"` or `"natpmp"` (a NAT-PMP-only gateway).
    pub mode: Option<String>,
}

/// The test server's settings from its options (checked by the core's `validate`).
fn server_config(o: ServerOptions) -> Result<ServerConfig> {
    let d = ServerConfig::default();
    let range_end = |v: Option<u32>, what, default| v.map_or(Ok(default), |v| port(f64::from(v), what));
    Ok(ServerConfig {
        listen: opt(&o.listen, |l| pcp_core::config::parse_socket_addr(l, "listen"))?.unwrap_or(d.listen),
        external_addr: opt(&o.external_address, |a| ip(a, "externalAddress"))?.unwrap_or(d.external_addr),
        port_range: (
            range_end(o.port_range_start, "portRangeStart", d.port_range.0)?,
            range_end(o.port_range_end, "portRangeEnd", d.port_range.1)?,
        ),
        min_lifetime: o.min_lifetime.unwrap_or(d.min_lifetime),
        max_lifetime: o.max_lifetime.unwrap_or(d.max_lifetime),
        allow_third_party: o.allow_third_party.unwrap_or(d.allow_third_party),
        initial_epoch: o.initial_epoch.unwrap_or(d.initial_epoch),
        mode: opt(&o.mode, ServerMode::parse)?.unwrap_or(d.mode),
        ..d
    })
}

/// A mapping as the test server holds it.
#[napi(object)]
pub struct ServerMappingData {
    pub opcode: String,
    pub protocol: u32,
    pub internal_address: String,
    pub internal_port: u32,
    pub external_address: String,
    pub external_port: u32,
    pub remote_address: Option<String>,
    pub remote_port: Option<u32>,
    pub nonce: String,
    /// Seconds until it expires.
    pub expires_in: f64,
    pub filters: u32,
}

/// The core's PCP test server, on loopback (`testing.Server` in index.js).
#[napi]
pub struct NativeServer {
    server: Option<Server>,
    /// Where it listens (still readable once stopped).
    addr: SocketAddr,
}

impl NativeServer {
    pub(crate) fn server(&self) -> napi::Result<&Server> {
        self.server.as_ref().ok_or_else(|| napi_err(invalid("the test server is stopped")))
    }
}

#[napi]
impl NativeServer {
    #[napi(constructor)]
    pub fn new(options: Option<ServerOptions>) -> napi::Result<Self> {
        let cfg = server_config(options.unwrap_or_default()).map_err(napi_err)?;
        cfg.validate().map_err(napi_err)?;
        let server = Server::start(cfg).map_err(|e| napi_err(e.into()))?;
        Ok(NativeServer { addr: server.local_addr(), server: Some(server) })
    }

    /// "ip:port" to give a client.
    #[napi(getter)]
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    #[napi(getter)]
    pub fn port(&self) -> u32 {
        u32::from(self.addr.port())
    }

    #[napi(getter)]
    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    #[napi(getter)]
    pub fn external_address(&self) -> napi::Result<String> {
        Ok(self.server()?.external_addr().to_string())
    }

    /// Silently drops the next `n` requests.
    #[napi]
    pub fn drop_next(&self, n: f64) -> napi::Result<()> {
        self.server()?.drop_next(whole(n, "n", u32::MAX).map_err(napi_err)?);
        Ok(())
    }

    /// Delays every answer by `ms` (0 to stop).
    #[napi]
    pub fn set_delay(&self, ms: f64) -> napi::Result<()> {
        self.server()?.set_delay(millis(ms, "delay").map_err(napi_err)?);
        Ok(())
    }

    /// Answers every MAP and PEER with a result code, by RFC name or number
    /// (as in Python and C; null: normally again).
    #[napi]
    pub fn force_result(&self, code: Option<Either<String, f64>>, lifetime: Option<f64>) -> napi::Result<()> {
        let forced = match code {
            None => None,
            Some(code) => {
                let rc = match code {
                    Either::A(name) => pcp_core::server::error_code_by_name(&name),
                    Either::B(n) => {
                        whole(n, "code", u32::MAX).and_then(|n| pcp_core::server::error_code_by_number(n.into()))
                    }
                }
                .map_err(napi_err)?;
                Some((rc, whole(lifetime.unwrap_or(30.0), "lifetime", u32::MAX).map_err(napi_err)?))
            }
        };
        self.server()?.force_result(forced);
        Ok(())
    }

    /// Answers MAP and PEER requests that create or renew with the named
    /// hostile case (tests/hostile/cases.json; null: normally again).
    #[napi]
    pub fn set_hostile(&self, name: Option<String>) -> napi::Result<()> {
        let case = name.map(|n| pcp_core::server::Hostile::parse(&n)).transpose().map_err(napi_err)?;
        self.server()?.set_hostile(case);
        Ok(())
    }

    /// Loses this fraction (0..1) of the datagrams each way.
    #[napi]
    pub fn set_loss(&self, fraction: f64) -> napi::Result<()> {
        self.server()?.set_loss(fraction).map_err(napi_err)
    }

    /// Loses all state, restarts the epoch at 0 and announces it.
    #[napi]
    pub fn reboot(&self) -> napi::Result<()> {
        self.server()?.reboot();
        Ok(())
    }

    /// Changes the external address and announces it.
    #[napi]
    pub fn set_external_address(&self, address: String) -> napi::Result<()> {
        let a = ip(&address, "address").map_err(napi_err)?;
        self.server()?.set_external_addr(a);
        Ok(())
    }

    #[napi(getter)]
    pub fn epoch(&self) -> napi::Result<u32> {
        Ok(self.server()?.epoch())
    }

    /// Live mappings, as the server holds them.
    #[napi]
    pub fn mappings(&self) -> napi::Result<Vec<ServerMappingData>> {
        let now = std::time::Instant::now();
        Ok(self
            .server()?
            .mappings()
            .into_iter()
            .map(|m| ServerMappingData {
                opcode: m.opcode.to_string(),
                protocol: u32::from(m.protocol.0),
                internal_address: m.internal_addr.to_string(),
                internal_port: u32::from(m.internal_port),
                external_address: m.external_addr.to_string(),
                external_port: u32::from(m.external_port),
                remote_address: m.remote.map(|(a, _)| a.to_string()),
                remote_port: m.remote.map(|(_, p)| u32::from(p)),
                nonce: m.nonce.to_hex(),
                expires_in: m.expires_at.saturating_duration_since(now).as_secs_f64(),
                filters: m.filters as u32,
            })
            .collect())
    }

    #[napi(getter)]
    pub fn mapping_count(&self) -> napi::Result<u32> {
        Ok(self.server()?.mapping_count() as u32)
    }

    #[napi(getter)]
    pub fn requests_received(&self) -> napi::Result<f64> {
        Ok(self.server()?.requests_received() as f64)
    }

    /// Stops the server; its port stops answering. Idempotent.
    #[napi]
    pub fn stop(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.stop();
        }
    }
}
