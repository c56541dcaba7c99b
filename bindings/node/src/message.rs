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
layout!(Row, ROW_FIELDS:
    Id = "id", Opcode = "opcode", Protocol = "protocol", InternalAddress = "internalAddress",
    InternalPort = "internalPort", ExternalAddress = "externalAddress", ExternalPort = "externalPort",
    Lifetime = "lifetime", Epoch = "epoch", Nonce = "nonce", RemoteAddress = "remoteAddress",
    RemotePort = "remotePort", GrantedAt = "grantedAt", ExpiresAt = "expiresAt",
    ProtocolVersion = "protocolVersion",
);

// The callback's arguments: a message's fields, `mapping.F` for field F of
// its mapping row. What a classic MAP result needs comes first, so that it
// is a short call (trailing undefined arguments are left out).
layout!(Arg, ARG_FIELDS:
    Kind = "kind", Req = "req", Code = "code", Message = "message", MId = "mapping.id",
    MExternalAddress = "mapping.externalAddress", MExternalPort = "mapping.externalPort",
    MLifetime = "mapping.lifetime", MOpcode = "mapping.opcode", MProtocol = "mapping.protocol",
    MInternalAddress = "mapping.internalAddress", MInternalPort = "mapping.internalPort", MEpoch = "mapping.epoch",
    MNonce = "mapping.nonce", MRemoteAddress = "mapping.remoteAddress", MRemotePort = "mapping.remotePort",
    MGrantedAt = "mapping.grantedAt", MExpiresAt = "mapping.expiresAt", Id = "id", Epoch = "epoch",
    Address = "address", OldAddress = "oldAddress", Server = "server",
    MProtocolVersion = "mapping.protocolVersion", RetryAfter = "retryAfter",
);

/// The two layouts, for `lib/rows.js`.
#[napi(object)]
pub struct RowLayout {
    pub row: Vec<String>,
    pub args: Vec<String>,
}

#[napi]
pub fn row_layout() -> RowLayout {
    let owned = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
    RowLayout { row: owned(ROW_FIELDS), args: owned(ARG_FIELDS) }
}

/// A mapping as the client holds it (a snapshot). JavaScript receives it
/// as an array in field order (`MAPPING_FIELDS` in `index.js`): V8 builds
/// an array much faster than an object with named keys, and a round trip
/// makes one of these.
#[derive(Clone)]
pub struct MappingData {
    /// Identifies the mapping for the life of its client.
    pub id: f64,
    /// `"MAP"` or `"PEER"`.
    pub opcode: &'static str,
    /// IANA protocol number (6 TCP, 17 UDP, 0 all).
    pub protocol: u32,
    pub internal_address: String,
    pub internal_port: u32,
    pub external_address: String,
    pub external_port: u32,
    /// Granted lifetime in seconds.
    pub lifetime: u32,
    /// The server's epoch when it granted or last renewed the mapping.
    pub epoch: u32,
    /// The mapping nonce, 24 hex digits.
    pub nonce: String,
    /// The remote peer (PEER mappings).
    pub remote_address: Option<String>,
    pub remote_port: Option<u32>,
    /// When the server granted or last renewed it, and when it expires
    /// unless renewed: milliseconds since 1970 (the core's times).
    pub granted_at: f64,
    pub expires_at: f64,
    /// `"pcp"` or `"natpmp"`: what the gateway granted it with.
    pub protocol_version: &'static str,
}

/// What the native side tells the JavaScript side: the result of request
/// `req` (`kind` = `"done"`) or an event (`kind` = the event name).
/// The callback receives the fields as its arguments, a mapping's fields
/// spread at the end (see `onNative` in `index.js`): calling with arguments
/// builds nothing on the JavaScript heap, where filling an array or an
/// object from native code costs a generic property store per field.
pub struct NativeMessage {
    pub kind: &'static str,
    pub req: Option<u32>,
    /// Error code (`pcp_core::Error::code`) when the request failed or the
    /// event carries an error.
    pub code: Option<&'static str>,
    pub message: Option<String>,
    pub mapping: Option<MappingData>,
    /// A MAP result for the classic API, which shows only these fields.
    pub classic: Option<ClassicMapping>,
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
        NativeMessage {
            kind,
            req: None,
            code: None,
            message: None,
            mapping: None,
            classic: None,
            id: None,
            epoch: None,
            address: None,
            old_address: None,
            server: None,
            retry_after: None,
        }
    }

    pub(crate) fn error(mut self, e: &PcpError) -> Self {
        self.code = Some(e.code());
        self.message = Some(e.to_string());
        self.retry_after = e.retry_after();
        self
    }
}

/// A JavaScript array filled in place; `None` leaves a hole (undefined).
pub(crate) struct JsRow {
    pub(crate) env: sys::napi_env,
    pub(crate) array: sys::napi_value,
}

impl JsRow {
    pub(crate) unsafe fn new(env: sys::napi_env, len: usize) -> napi::Result<Self> {
        let mut array = std::ptr::null_mut();
        check(sys::napi_create_array_with_length(env, len, &mut array))?;
        Ok(JsRow { env, array })
    }

    pub(crate) unsafe fn set<T: ToNapiValue>(&mut self, slot: Row, value: Option<T>) -> napi::Result<()> {
        let index = slot as u32;
        if let Some(v) = value {
            let v = T::to_napi_value(self.env, v)?;
            check(sys::napi_set_element(self.env, self.array, index, v))?;
        }
        Ok(())
    }
}

pub(crate) fn check(status: sys::napi_status) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::new(Status::GenericFailure, format!("napi call failed ({status})")))
    }
}

impl ToNapiValue for MappingData {
    unsafe fn to_napi_value(env: sys::napi_env, m: Self) -> napi::Result<sys::napi_value> {
        let mut row = JsRow::new(env, ROW_FIELDS.len())?;
        row.set(Row::Id, Some(m.id))?;
        row.set(Row::Opcode, Some(m.opcode))?;
        row.set(Row::Protocol, Some(m.protocol))?;
        row.set(Row::InternalAddress, Some(m.internal_address))?;
        row.set(Row::InternalPort, Some(m.internal_port))?;
        row.set(Row::ExternalAddress, Some(m.external_address))?;
        row.set(Row::ExternalPort, Some(m.external_port))?;
        row.set(Row::Lifetime, Some(m.lifetime))?;
        row.set(Row::Epoch, Some(m.epoch))?;
        row.set(Row::Nonce, Some(m.nonce))?;
        row.set(Row::RemoteAddress, m.remote_address)?;
        row.set(Row::RemotePort, m.remote_port)?;
        row.set(Row::GrantedAt, Some(m.granted_at))?;
        row.set(Row::ExpiresAt, Some(m.expires_at))?;
        row.set(Row::ProtocolVersion, Some(m.protocol_version))?;
        Ok(row.array)
    }
}

/// What the classic API's createMapping resolves, and the id to hold.
pub struct ClassicMapping {
    pub(crate) id: f64,
    pub(crate) external_address: String,
    pub(crate) external_port: u32,
    pub(crate) lifetime: u32,
}

impl NativeMessage {
    /// The callback's arguments; `undefined` for what the message lacks.
    ///
    /// # Safety
    /// On the JavaScript thread of `env`, inside a handle scope.
    pub(crate) unsafe fn into_args(self, env: sys::napi_env) -> napi::Result<Vec<sys::napi_value>> {
        unsafe fn value<T: ToNapiValue>(env: sys::napi_env, v: Option<T>) -> napi::Result<Option<sys::napi_value>> {
            v.map(|v| T::to_napi_value(env, v)).transpose()
        }
        // Names, codes, addresses and hex digits: ASCII, which V8 takes as
        // Latin-1 without decoding UTF-8.
        unsafe fn ascii(env: sys::napi_env, v: Option<&str>) -> napi::Result<Option<sys::napi_value>> {
            v.map(|s| {
                debug_assert!(s.is_ascii());
                let mut out = std::ptr::null_mut();
                check(sys::napi_create_string_latin1(env, s.as_ptr().cast(), s.len() as isize, &mut out))?;
                Ok(out)
            })
            .transpose()
        }
        let (m, c) = (self.mapping.as_ref(), self.classic.as_ref());
        let mut slots = [None; ARG_FIELDS.len()];
        let mut put = |arg: Arg, v: Option<sys::napi_value>| slots[arg as usize] = v;
        put(Arg::Kind, ascii(env, Some(self.kind))?);
        put(Arg::Req, value(env, self.req)?);
        put(Arg::Code, ascii(env, self.code)?);
        put(Arg::Message, value(env, self.message)?);
        put(Arg::MId, value(env, m.map(|m| m.id).or(c.map(|c| c.id)))?);
        let external = m.map(|m| &m.external_address).or(c.map(|c| &c.external_address));
        put(Arg::MExternalAddress, ascii(env, external.map(String::as_str))?);
        put(Arg::MExternalPort, value(env, m.map(|m| m.external_port).or(c.map(|c| c.external_port)))?);
        put(Arg::MLifetime, value(env, m.map(|m| m.lifetime).or(c.map(|c| c.lifetime)))?);
        put(Arg::MOpcode, ascii(env, m.map(|m| m.opcode))?);
        put(Arg::MProtocol, value(env, m.map(|m| m.protocol))?);
        put(Arg::MInternalAddress, ascii(env, m.map(|m| m.internal_address.as_str()))?);
        put(Arg::MInternalPort, value(env, m.map(|m| m.internal_port))?);
        put(Arg::MEpoch, value(env, m.map(|m| m.epoch))?);
        put(Arg::MNonce, ascii(env, m.map(|m| m.nonce.as_str()))?);
        put(Arg::MRemoteAddress, ascii(env, m.and_then(|m| m.remote_address.as_deref()))?);
        put(Arg::MRemotePort, value(env, m.and_then(|m| m.remote_port))?);
        put(Arg::MGrantedAt, value(env, m.map(|m| m.granted_at))?);
        put(Arg::MExpiresAt, value(env, m.map(|m| m.expires_at))?);
        put(Arg::Id, value(env, self.id)?);
        put(Arg::Epoch, value(env, self.epoch)?);
        put(Arg::Address, ascii(env, self.address.as_deref())?);
        put(Arg::OldAddress, ascii(env, self.old_address.as_deref())?);
        put(Arg::Server, ascii(env, self.server.as_deref())?);
        put(Arg::MProtocolVersion, ascii(env, m.map(|m| m.protocol_version))?);
        put(Arg::RetryAfter, value(env, self.retry_after)?);
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
        let args = m.0.into_args(env)?;
        let row = JsRow::new(env, args.len())?;
        for (i, v) in args.into_iter().enumerate() {
            check(sys::napi_set_element(env, row.array, i as u32, v))?;
        }
        Ok(row.array)
    }
}

#[napi(object)]
pub struct ClientOptions {
    /// Listen for unsolicited ANNOUNCE on port 5350 (default true).
    pub listen_announce: Option<bool>,
    /// Give up on a request after this many milliseconds (default 10000).
    pub deadline_ms: Option<f64>,
    /// Delete the mappings when the client is closed (default true).
    pub delete_on_close: Option<bool>,
    /// How long closing may wait for the deletes to be answered (default 2000).
    pub close_timeout_ms: Option<f64>,
    /// Bind to this local address.
    pub local_address: Option<String>,
    /// Port to listen on for ANNOUNCE (default 5350).
    pub announce_port: Option<u32>,
    /// Upper bound of the random wait before renewing on an ANNOUNCE (default 5000).
    pub announce_delay_max_ms: Option<f64>,
    /// `"auto"` (default: PCP, falling back to NAT-PMP), `"pcp"` or `"natpmp"`.
    pub protocol: Option<String>,
}

#[napi(object)]
pub struct FilterData {
    pub remote_address: String,
    pub prefix_length: Option<u32>,
    pub remote_port: Option<u32>,
}

/// The MAP options beyond the four every call has (passed as numbers).
#[napi(object)]
pub struct MapOptions {
    pub external_address: Option<String>,
    pub prefer_failure: Option<bool>,
    pub third_party: Option<String>,
    pub filters: Option<Vec<FilterData>>,
    pub nonce: Option<String>,
    pub deadline_ms: Option<f64>,
}

#[napi(object)]
pub struct PeerOptions {
    pub protocol: u32,
    pub internal_port: u32,
    pub remote_address: String,
    pub remote_port: u32,
    pub external_port: Option<u32>,
    pub external_address: Option<String>,
    pub lifetime: Option<f64>,
    pub third_party: Option<String>,
    pub nonce: Option<String>,
    pub deadline_ms: Option<f64>,
}

#[napi(object)]
pub struct DiscoverOptions {
    /// Only these candidates ("host", "host:port"); the routing table is not consulted.
    pub candidates: Option<Vec<String>>,
    /// Servers tried after the default gateways.
    pub servers: Option<Vec<String>>,
    pub deadline_ms: Option<f64>,
    pub initial_timeout_ms: Option<f64>,
}
