//! What crosses to JavaScript: result and event messages as call
//! arguments, mappings as objects, and the option objects napi-rs converts.

use super::*;

/// Declares `NativeMessage` and the order of its fields as the callback's
/// arguments, once: `MESSAGE_FIELDS` names them for `lib/client.js`, which
/// generates the function that names them again, so the two cannot drift.
/// Calling with arguments builds nothing on the JavaScript heap, where an
/// object made from native code costs a property definition per field
/// (measured: 12 % more CPU per classic round trip).
macro_rules! message {
    ($($(#[$doc:meta])* $field:ident: $ty:ty = $js:literal,)*) => {
        /// What the native side tells the JavaScript side: the result of
        /// request `req` (`kind` = `"done"`) or an event (`kind` = the
        /// event name).
        #[derive(Default)]
        pub struct NativeMessage {
            pub kind: &'static str,
            $($(#[$doc])* pub $field: Option<$ty>,)*
        }

        pub(crate) const MESSAGE_FIELDS: &[&str] = &["kind", $($js),*];

        impl NativeMessage {
            /// The callback's arguments, absent fields `undefined`, trailing
            /// ones left out (a classic result is a short call).
            ///
            /// # Safety
            /// On the JavaScript thread of `env`, inside a handle scope.
            pub(crate) unsafe fn into_args(self, env: sys::napi_env) -> napi::Result<Vec<sys::napi_value>> {
                let mut undefined = std::ptr::null_mut();
                check(sys::napi_get_undefined(env, &mut undefined))?;
                let mut args = vec![<&str>::to_napi_value(env, self.kind)?];
                let mut len = 1;
                $(
                    let value = match self.$field {
                        Some(v) => ToNapiValue::to_napi_value(env, v)?,
                        None => undefined,
                    };
                    args.push(value);
                    if value != undefined {
                        len = args.len();
                    }
                )*
                args.truncate(len);
                Ok(args)
            }
        }
    };
}

message! {
    req: u32 = "req",
    /// Error code (`pcp_core::Error::code`) when the request failed or the
    /// event carries an error.
    code: &'static str = "code",
    message: String = "message",
    /// For a server's refusal: the error's lifetime (RFC 6887 section 8.3).
    retry_after: u32 = "retryAfter",
    /// The mapping's id (also of a request's result that made one).
    id: f64 = "id",
    /// An address: the new one of an event, the external one of a result.
    address: String = "address",
    /// A classic MAP result's external port and lifetime (the rest is in `mapping`).
    port: u32 = "port",
    lifetime: u32 = "lifetime",
    mapping: MappingData = "mapping",
    epoch: u32 = "epoch",
    old_address: String = "oldAddress",
    server: String = "server",
}

/// A mapping as JavaScript receives it (`mappings()`, events, MAP and PEER
/// results): the core's own `MappingInfo`, its times in ms since 1970.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct MappingData {
    pub id: f64,
    pub external_address: String,
    pub external_port: u32,
    pub lifetime: u32,
    pub opcode: &'static str,
    pub protocol: u32,
    pub internal_address: String,
    pub internal_port: u32,
    pub epoch: u32,
    pub nonce: String,
    pub remote_address: Option<String>,
    pub remote_port: Option<u32>,
    pub granted_at: f64,
    pub expires_at: f64,
    pub protocol_version: &'static str,
}

impl From<&MappingInfo> for MappingData {
    fn from(m: &MappingInfo) -> Self {
        MappingData {
            id: m.id.0 as f64,
            external_address: m.external_addr.to_string(),
            external_port: u32::from(m.external_port),
            lifetime: m.lifetime,
            opcode: m.opcode.name(),
            protocol: u32::from(m.protocol.0),
            internal_address: m.internal_addr.to_string(),
            internal_port: u32::from(m.internal_port),
            epoch: m.epoch,
            nonce: m.nonce.to_hex(),
            remote_address: m.remote.map(|(a, _)| a.to_string()),
            remote_port: m.remote.map(|(_, p)| u32::from(p)),
            granted_at: wall_clock::unix_millis(m.granted_at),
            expires_at: wall_clock::unix_millis(m.expires_at()),
            protocol_version: m.version.name(),
        }
    }
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
        let mut out = std::ptr::null_mut();
        check(sys::napi_create_array_with_length(env, args.len(), &mut out))?;
        for (i, v) in args.into_iter().enumerate() {
            check(sys::napi_set_element(env, out, i as u32, v))?;
        }
        Ok(out)
    }
}

pub(crate) fn check(status: sys::napi_status) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::new(Status::GenericFailure, format!("napi call failed ({status})")))
    }
}

/// The order of the callback's arguments, for `lib/client.js`.
#[napi]
pub fn message_fields() -> Vec<&'static str> {
    MESSAGE_FIELDS.to_vec()
}

// The option objects as JavaScript passes them: napi-rs converts the
// types (its errors name the field), `convert.rs` and the core check the
// values. Numbers are f64 so that a bad one is reported, not wrapped.

/// `Client` options; durations in milliseconds.
#[derive(Default)]
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
    /// Give up on a request after this many retransmissions (default: no
    /// limit but the deadline); Python's `max_retransmissions`, C's
    /// `pcp_config_set_retries`.
    pub max_retransmissions: Option<f64>,
}

#[napi(object)]
pub struct FilterData {
    pub remote_address: String,
    pub prefix_length: Option<f64>,
    pub remote_port: Option<f64>,
}

/// The options of MAP, PEER and a delete by nonce (one this client does
/// not hold), in one type: the core checks which apply (`MapSpec::into_peer`).
#[napi(object)]
pub struct RequestOptions {
    pub protocol: ProtocolArg,
    pub internal_port: f64,
    pub external_port: Option<f64>,
    pub external_address: Option<String>,
    pub lifetime: Option<f64>,
    pub prefer_failure: Option<bool>,
    pub third_party: Option<String>,
    pub filters: Option<Vec<FilterData>>,
    pub nonce: Option<String>,
    pub deadline: Option<f64>,
    /// PEER's remote peer.
    pub remote_address: Option<String>,
    pub remote_port: Option<f64>,
}

#[derive(Default)]
#[napi(object)]
pub struct DiscoverOptions {
    /// Only these candidates ("host", "host:port"); the routing table is not consulted.
    pub candidates: Option<Vec<String>>,
    /// Servers tried after the default gateways.
    pub servers: Option<Vec<String>>,
    pub deadline: Option<f64>,
    pub initial_timeout: Option<f64>,
}
