//! What crosses to JavaScript: mapping rows and result/event messages as
//! call arguments (cheaper for V8 than objects with named keys), and the
//! option objects napi-rs converts.

use super::*;

/// Declares the positions of a positional layout once: an enum of slots (in
/// order) and the JavaScript name of each, which `lib/rows.js` reads (with
/// [`row_layout`]) to generate the code that names the values again.
macro_rules! layout {
    ($enum:ident, $names:ident: $($slot:ident = $js:literal),* $(,)?) => {
        #[derive(Clone, Copy)]
        pub(crate) enum $enum { $($slot),* }
        pub(crate) const $names: &[&str] = &[$($js),*];
    };
}

// A mapping row (what `mappings()`, `findMapping()` and messages carry).
// What a classic MAP result shows comes first (see `Arg`).
layout!(Row, ROW_FIELDS:
    Id = "id", ExternalAddress = "externalAddress", ExternalPort = "externalPort", Lifetime = "lifetime",
    Opcode = "opcode", Protocol = "protocol", InternalAddress = "internalAddress", InternalPort = "internalPort",
    Epoch = "epoch", Nonce = "nonce", RemoteAddress = "remoteAddress", RemotePort = "remotePort",
    GrantedAt = "grantedAt", ExpiresAt = "expiresAt", ProtocolVersion = "protocolVersion",
);

// The callback's arguments: a message's fields, with its mapping row's
// fields (`mapping.F`) spread where `Mapping` stands, so that a classic MAP
// result is a short call (trailing undefined arguments are left out).
layout!(Arg, MESSAGE_FIELDS:
    Kind = "kind", Req = "req", Code = "code", Message = "message", Mapping = "mapping", Id = "id",
    Epoch = "epoch", Address = "address", OldAddress = "oldAddress", Server = "server", RetryAfter = "retryAfter",
);

const ARG_COUNT: usize = MESSAGE_FIELDS.len() - 1 + ROW_FIELDS.len();

impl Arg {
    /// The argument's position: the mapping's fields take `Mapping`'s place.
    fn index(self) -> usize {
        let i = self as usize;
        if i > Arg::Mapping as usize {
            i - 1 + ROW_FIELDS.len()
        } else {
            i
        }
    }
}

/// The two layouts, for `lib/rows.js`.
#[napi(object)]
pub struct RowLayout {
    pub row: Vec<String>,
    pub args: Vec<String>,
}

#[napi]
pub fn row_layout() -> RowLayout {
    let row: Vec<String> = ROW_FIELDS.iter().map(|f| f.to_string()).collect();
    let args = MESSAGE_FIELDS
        .iter()
        .flat_map(|f| match *f {
            "mapping" => row.iter().map(|r| format!("mapping.{r}")).collect(),
            other => vec![other.to_string()],
        })
        .collect();
    RowLayout { row, args }
}

/// What the native side tells the JavaScript side: the result of request
/// `req` (`kind` = `"done"`) or an event (`kind` = the event name).
/// The callback receives the fields as its arguments, a mapping's fields
/// spread at the end (see `lib/rows.js`): calling with arguments builds
/// nothing on the JavaScript heap, where filling an array or an object from
/// native code costs a generic property store per field. The mapping is the
/// core's own `MappingInfo` (its times included), converted on the
/// JavaScript thread.
#[derive(Default)]
pub struct NativeMessage {
    pub kind: &'static str,
    pub req: Option<u32>,
    /// Error code (`pcp_core::Error::code`) when the request failed or the
    /// event carries an error.
    pub code: Option<&'static str>,
    pub message: Option<String>,
    pub mapping: Option<MappingInfo>,
    /// A MAP result for the classic API: only its id, external address and
    /// port, and lifetime cross.
    pub classic: bool,
    pub id: Option<f64>,
    pub epoch: Option<u32>,
    pub address: Option<String>,
    pub old_address: Option<String>,
    pub server: Option<String>,
    /// For a server's refusal: the error's lifetime (RFC 6887 section 8.3).
    pub retry_after: Option<u32>,
}

impl NativeMessage {
    pub(crate) fn new(kind: &'static str) -> Self {
        NativeMessage { kind, ..Default::default() }
    }

    /// The result of request `req`, to be filled in.
    pub(crate) fn done(req: u32) -> Self {
        NativeMessage { kind: "done", req: Some(req), ..Default::default() }
    }

    pub(crate) fn error(mut self, e: &PcpError) -> Self {
        self.code = Some(e.code());
        self.message = Some(e.to_string());
        self.retry_after = e.retry_after();
        self
    }
}

pub(crate) fn check(status: sys::napi_status) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::new(Status::GenericFailure, format!("napi call failed ({status})")))
    }
}

unsafe fn num(env: sys::napi_env, v: f64) -> napi::Result<sys::napi_value> {
    f64::to_napi_value(env, v)
}

/// Names, codes, addresses and hex digits are ASCII, which V8 takes as
/// Latin-1 without decoding UTF-8.
unsafe fn ascii(env: sys::napi_env, s: &str) -> napi::Result<sys::napi_value> {
    debug_assert!(s.is_ascii());
    let mut out = std::ptr::null_mut();
    check(sys::napi_create_string_latin1(env, s.as_ptr().cast(), s.len() as isize, &mut out))?;
    Ok(out)
}

type Put<'a> = dyn FnMut(Row, sys::napi_value) -> napi::Result<()> + 'a;

/// Hands each field of mapping `m` to `put` (only what the classic API
/// shows if `classic`); a PEER's remote fields only for a PEER.
unsafe fn put_mapping(env: sys::napi_env, m: &MappingInfo, classic: bool, put: &mut Put<'_>) -> napi::Result<()> {
    put(Row::Id, num(env, m.id.0 as f64)?)?;
    put(Row::ExternalAddress, ascii(env, &m.external_addr.to_string())?)?;
    put(Row::ExternalPort, num(env, f64::from(m.external_port))?)?;
    put(Row::Lifetime, num(env, f64::from(m.lifetime))?)?;
    if classic {
        return Ok(());
    }
    put(Row::Opcode, ascii(env, m.opcode.name())?)?;
    put(Row::Protocol, num(env, f64::from(m.protocol.0))?)?;
    put(Row::InternalAddress, ascii(env, &m.internal_addr.to_string())?)?;
    put(Row::InternalPort, num(env, f64::from(m.internal_port))?)?;
    put(Row::Epoch, num(env, f64::from(m.epoch))?)?;
    put(Row::Nonce, ascii(env, &m.nonce.to_hex())?)?;
    if let Some((addr, port)) = m.remote {
        put(Row::RemoteAddress, ascii(env, &addr.to_string())?)?;
        put(Row::RemotePort, num(env, f64::from(port))?)?;
    }
    put(Row::GrantedAt, num(env, wall_clock::unix_millis(m.granted_at))?)?;
    put(Row::ExpiresAt, num(env, wall_clock::unix_millis(m.expires_at()))?)?;
    put(Row::ProtocolVersion, ascii(env, m.version.name())?)
}

/// A JavaScript array of `values`, `undefined` where there is none.
unsafe fn array(env: sys::napi_env, values: &[Option<sys::napi_value>]) -> napi::Result<sys::napi_value> {
    let mut out = std::ptr::null_mut();
    check(sys::napi_create_array_with_length(env, values.len(), &mut out))?;
    for (i, v) in values.iter().enumerate() {
        if let Some(v) = v {
            check(sys::napi_set_element(env, out, i as u32, *v))?;
        }
    }
    Ok(out)
}

/// A mapping as JavaScript receives it: an array in `Row` order (V8 builds
/// an array much faster than an object with named keys).
pub struct MappingRow(pub(crate) MappingInfo);

impl ToNapiValue for MappingRow {
    unsafe fn to_napi_value(env: sys::napi_env, m: Self) -> napi::Result<sys::napi_value> {
        let mut row = [None; ROW_FIELDS.len()];
        put_mapping(env, &m.0, false, &mut |slot, v| {
            row[slot as usize] = Some(v);
            Ok(())
        })?;
        array(env, &row)
    }
}

impl NativeMessage {
    /// The callback's arguments; `undefined` for what the message lacks.
    ///
    /// # Safety
    /// On the JavaScript thread of `env`, inside a handle scope.
    pub(crate) unsafe fn into_args(self, env: sys::napi_env) -> napi::Result<Vec<sys::napi_value>> {
        let mut slots = [None; ARG_COUNT];
        let number = |v: Option<u32>| v.map(|v| num(env, f64::from(v))).transpose();
        let text = |v: Option<&str>| v.map(|s| ascii(env, s)).transpose();
        slots[Arg::Kind.index()] = Some(ascii(env, self.kind)?);
        slots[Arg::Req.index()] = number(self.req)?;
        slots[Arg::Code.index()] = text(self.code)?;
        slots[Arg::Message.index()] = self.message.map(|m| String::to_napi_value(env, m)).transpose()?;
        slots[Arg::Id.index()] = self.id.map(|v| num(env, v)).transpose()?;
        slots[Arg::Epoch.index()] = number(self.epoch)?;
        slots[Arg::Address.index()] = text(self.address.as_deref())?;
        slots[Arg::OldAddress.index()] = text(self.old_address.as_deref())?;
        slots[Arg::Server.index()] = text(self.server.as_deref())?;
        slots[Arg::RetryAfter.index()] = number(self.retry_after)?;
        if let Some(m) = &self.mapping {
            put_mapping(env, m, self.classic, &mut |slot, v| {
                slots[Arg::Mapping as usize + slot as usize] = Some(v);
                Ok(())
            })?;
        }
        // Trailing undefined arguments are left out: a classic result is a short call.
        let len = slots.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
        let mut undefined = std::ptr::null_mut();
        check(sys::napi_get_undefined(env, &mut undefined))?;
        Ok(slots[..len].iter().map(|v| v.unwrap_or(undefined)).collect())
    }
}

impl JsValuesTupleIntoVec for NativeMessage {
    // napi-rs's trait fixes this signature; it only calls it on the JavaScript thread.
    #[allow(clippy::not_unsafe_ptr_arg_deref)]
    fn into_vec(self, env: sys::napi_env) -> napi::Result<Vec<sys::napi_value>> {
        // SAFETY: napi-rs calls this on the JavaScript thread, in the scope
        // of the call it makes with the values.
        unsafe { self.into_args(env) }
    }
}

/// A message returned instead of passed to the callback (a request that
/// finished at once): an array of the callback's arguments.
pub struct MessageRow(pub(crate) NativeMessage);

impl ToNapiValue for MessageRow {
    unsafe fn to_napi_value(env: sys::napi_env, m: Self) -> napi::Result<sys::napi_value> {
        let args: Vec<_> = m.0.into_args(env)?.into_iter().map(Some).collect();
        array(env, &args)
    }
}

// The option objects as JavaScript passes them: napi-rs converts the
// types (its errors name the field), `convert.rs` and the core check the
// values. Numbers are f64 so that a bad one is reported, not wrapped.

/// `Client` options; durations in milliseconds.
#[napi(object)]
pub struct ClientOptions {
    /// Listen for unsolicited ANNOUNCE on port 5350 (default true).
    pub listen_announce: Option<bool>,
    /// Give up on a request after this many milliseconds (default 10000).
    pub deadline: Option<f64>,
    /// Delete the mappings when the client is closed (default true).
    pub delete_on_close: Option<bool>,
    /// How long closing may wait for the deletes to be answered (default 2000).
    pub close_timeout: Option<f64>,
    /// Bind to this local address.
    pub local_address: Option<String>,
    /// Port to listen on for ANNOUNCE (default 5350).
    pub announce_port: Option<f64>,
    /// Upper bound of the random wait before renewing on an ANNOUNCE (default 5000).
    pub announce_delay_max: Option<f64>,
    /// `"auto"` (default: PCP, falling back to NAT-PMP), `"pcp"` or `"natpmp"`.
    pub protocol: Option<String>,
}

#[napi(object)]
pub struct FilterData {
    pub remote_address: String,
    pub prefix_length: Option<f64>,
    pub remote_port: Option<f64>,
}

/// The MAP options beyond the four every call has (passed as numbers).
#[napi(object)]
pub struct MapOptions {
    pub external_address: Option<String>,
    pub prefer_failure: Option<bool>,
    pub third_party: Option<String>,
    pub filters: Option<Vec<FilterData>>,
    pub nonce: Option<String>,
    pub deadline: Option<f64>,
}

#[napi(object)]
pub struct PeerOptions {
    pub protocol: f64,
    pub internal_port: f64,
    pub remote_address: String,
    pub remote_port: f64,
    pub external_port: Option<f64>,
    pub external_address: Option<String>,
    pub lifetime: Option<f64>,
    pub third_party: Option<String>,
    pub nonce: Option<String>,
    pub deadline: Option<f64>,
}

/// A mapping to delete by its nonce (one this client does not hold).
#[napi(object)]
pub struct DeleteOptions {
    pub protocol: f64,
    pub internal_port: f64,
    pub nonce: String,
    /// The THIRD_PARTY address the mapping was made for.
    pub third_party: Option<String>,
}

#[napi(object)]
pub struct DiscoverOptions {
    /// Only these candidates ("host", "host:port"); the routing table is not consulted.
    pub candidates: Option<Vec<String>>,
    /// Servers tried after the default gateways.
    pub servers: Option<Vec<String>>,
    pub deadline: Option<f64>,
    pub initial_timeout: Option<f64>,
}
