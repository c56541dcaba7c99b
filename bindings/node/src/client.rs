//! `NativeClient`, discovery and the error codes.

use super::*;

/// The native client: one `pcp_core::Client`. Use `Client` or `PCPClient`
/// from `index.js` instead.
#[napi]
pub struct NativeClient {
    client: Option<Client>,
    /// What the client knew once closed (the last epoch, our address):
    /// still readable, as in the core and Python. Set when `close` lets the
    /// client go (so that its sockets close with it) and again when the
    /// close finishes, since the deletes' answers may bring a new epoch.
    known_at_close: Arc<Mutex<Option<Known>>>,
    inner: Arc<Inner>,
    referenced: bool,
    /// The event handler forwarding to JavaScript, while someone listens.
    handler: Option<HandlerId>,
    /// Reads answers on the JavaScript thread; None if libuv refused (the
    /// driver thread then reads them) or once closed.
    reader: Option<reader::ReaderHandle>,
}

impl NativeClient {
    pub(crate) fn stop_reader(&mut self) {
        if let Some(r) = self.reader.take() {
            r.stop();
        }
    }
}

impl Drop for NativeClient {
    fn drop(&mut self) {
        // A GC finalizer runs on the JavaScript thread, where the poll handle lives.
        self.stop_reader();
        // Dropping the last handle closes the client, which may wait for
        // deletes: never on the JavaScript thread (this runs in a GC finalizer).
        if let Some(c) = self.client.take() {
            drop(c.close_async(false));
        }
    }
}

#[napi]
impl NativeClient {
    /// Connects to `server` ("host", "host:port", IPv6 with or without
    /// brackets). `callback` receives every result and event.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        server: String,
        options: Option<ClientOptions>,
        callback: Function<NativeMessage, Unknown<'static>>,
    ) -> napi::Result<Self> {
        let cc = client_config(&server, options.unwrap_or_default()).map_err(napi_err)?;
        let callback_value = callback.raw();
        let tsfn: Tsfn = callback.build_threadsafe_function::<NativeMessage>().weak::<true>().build()?;
        let client = Client::new(cc).map_err(napi_err)?;
        let inner = Arc::new(Inner {
            tsfn,
            requests: Mutex::new(HashMap::new()),
            listening: AtomicBool::new(false),
            events_due: AtomicI64::new(0),
            syncs_queued: AtomicI64::new(0),
        });
        // SAFETY: the constructor runs on the JavaScript thread, and
        // `callback_value` belongs to its scope.
        let reader = unsafe { reader::Reader::start(env.raw(), callback_value, &client, &inner) };
        let known_at_close = Arc::default();
        Ok(NativeClient { client: Some(client), known_at_close, inner, referenced: false, handler: None, reader })
    }

    /// Starts forwarding events (renewed, lost, ...) to the callback. Done
    /// only while someone listens: a client with an event handler costs the
    /// core a copy of every event and a driver wake-up per request.
    #[napi]
    pub fn listen(&mut self) -> napi::Result<()> {
        if self.handler.is_some() {
            return Ok(());
        }
        let weak = Arc::downgrade(&self.inner);
        let id = self.client()?.on_event(move |ev| {
            let Some(inner) = weak.upgrade() else { return };
            if let Some(msg) = event_message(ev) {
                inner.tsfn.call(msg, ThreadsafeFunctionCallMode::NonBlocking);
            }
            // The event of a request's result: once the last one due is
            // queued, tell JavaScript it may let the process end.
            let completes_request = matches!(
                ev,
                Event::Granted(_)
                    | Event::Failed { .. }
                    | Event::Deleted { .. }
                    | Event::Announced { .. }
                    | Event::ExternalAddress { .. }
            );
            if completes_request && inner.events_due.fetch_sub(1, Ordering::AcqRel) <= 1 {
                inner.syncs_queued.fetch_add(1, Ordering::AcqRel);
                inner.tsfn.call(NativeMessage::new("sync"), ThreadsafeFunctionCallMode::NonBlocking);
            }
        });
        self.inner.listening.store(true, Ordering::Release);
        self.handler = Some(id);
        Ok(())
    }

    /// JavaScript received a `sync` message.
    #[napi]
    pub fn synced(&self) {
        self.inner.syncs_queued.fetch_sub(1, Ordering::AcqRel);
    }

    /// Stops forwarding events (the last listener is gone). Events already
    /// queued are still delivered.
    #[napi]
    pub fn unlisten(&mut self) {
        if let (Some(id), Some(client)) = (self.handler.take(), self.client.as_ref()) {
            client.remove_event_handler(id);
        }
        // Nobody waits for the events still due.
        self.inner.listening.store(false, Ordering::Release);
        self.inner.events_due.store(0, Ordering::Release);
    }

    /// Whether answers are read on the JavaScript thread (false: the core's
    /// driver thread reads them, as before; also after `close`).
    #[napi]
    pub fn reads_on_main_thread(&self) -> bool {
        self.reader.is_some()
    }

    /// The client, or CLOSED once `close` was called.
    fn client(&self) -> napi::Result<&Client> {
        self.client.as_ref().ok_or_else(|| napi_err(PcpError::Closed))
    }

    /// Whether the client keeps the Node.js event loop alive.
    #[napi]
    pub fn set_ref(&mut self, env: Env, referenced: bool) -> napi::Result<()> {
        // Events due or queued keep the process alive until JavaScript has
        // them (see `Inner::events_due`), except once closing.
        let referenced = referenced
            || (self.client.is_some()
                && (self.inner.events_due.load(Ordering::Acquire) > 0
                    || self.inner.syncs_queued.load(Ordering::Acquire) > 0));
        if referenced == self.referenced {
            return Ok(());
        }
        let raw = self.inner.tsfn.raw();
        // SAFETY: called on the JavaScript thread with a live threadsafe function.
        let status = unsafe {
            if referenced {
                napi::sys::napi_ref_threadsafe_function(env.raw(), raw)
            } else {
                napi::sys::napi_unref_threadsafe_function(env.raw(), raw)
            }
        };
        if status == napi::sys::Status::napi_ok {
            self.referenced = referenced;
        }
        Ok(())
    }

    /// The classic MAP of `internal_port` (the core's `map_port_async`:
    /// join a call in flight, refresh a held mapping). Positional numbers
    /// are measurably cheaper across napi than an object.
    #[napi]
    pub fn map_port(
        &self,
        req: u32,
        protocol: ProtocolArg,
        internal_port: f64,
        external_port: Option<f64>,
        lifetime: Option<f64>,
    ) -> napi::Result<Option<MessageRow>> {
        let client = self.client()?;
        let args = || -> Result<_> {
            let (p, i) = (self::protocol(&protocol)?, port(internal_port, "internalPort")?);
            Ok((p, i, port(external_port.unwrap_or(0.0), "externalPort")?, self::lifetime(lifetime)?))
        };
        let pending = or_refused(args(), |(p, i, e, l)| client.map_port_async(p, i, e, l));
        Ok(self.inner.start(req, pending, fill_classic))
    }

    #[napi]
    pub fn map(&self, req: u32, options: RequestOptions) -> napi::Result<Option<MessageRow>> {
        let client = self.client()?;
        Ok(self.inner.start(req, or_refused(map_spec(&options, client), |s| client.map_async(s)), fill_mapping))
    }

    #[napi]
    pub fn peer(&self, req: u32, options: RequestOptions) -> napi::Result<Option<MessageRow>> {
        let client = self.client()?;
        Ok(self.inner.start(req, or_refused(peer_spec(&options, client), |s| client.peer_async(s)), fill_mapping))
    }

    /// Deletes the mapping with this id.
    #[napi]
    pub fn delete(&self, req: u32, id: f64) -> napi::Result<Option<MessageRow>> {
        let client = self.client()?;
        Ok(self.inner.start(req, client.delete_async(MappingId(id as u64)), |(), _| {}))
    }

    /// Deletes a mapping this client does not hold, known by its nonce.
    #[napi]
    pub fn delete_by_nonce(&self, req: u32, options: RequestOptions) -> napi::Result<Option<MessageRow>> {
        let client = self.client()?;
        let spec = match options.nonce {
            Some(_) => map_spec(&options, client),
            None => Err(invalid("nonce must be a string of 24 hex digits, got undefined")),
        };
        Ok(self.inner.start(req, or_refused(spec, |s| client.delete_with_async(s)), |(), _| {}))
    }

    /// The classic PEER (the core's `peer_port_async`: a peer mapping the
    /// client holds, asked again, is returned or renewed with its nonce).
    #[napi]
    pub fn peer_port(&self, req: u32, options: RequestOptions) -> napi::Result<Option<MessageRow>> {
        let client = self.client()?;
        let start =
            |s: PeerSpec| client.peer_port_async(s.protocol, s.internal_port, s.remote_addr, s.remote_port, s.lifetime);
        Ok(self.inner.start(req, or_refused(peer_spec(&options, client), start), fill_mapping))
    }

    /// The classic delete of a port's mapping (nothing to do if none is held).
    #[napi]
    pub fn delete_port(
        &self,
        req: u32,
        protocol_number: ProtocolArg,
        internal_port: f64,
    ) -> napi::Result<Option<MessageRow>> {
        let client = self.client()?;
        let args = protocol(&protocol_number).and_then(|p| Ok((p, port(internal_port, "internalPort")?)));
        Ok(self.inner.start(req, or_refused(args, |(p, i)| client.delete_port_async(p, i)), |(), _| {}))
    }

    #[napi]
    pub fn announce(&self, req: u32) -> napi::Result<Option<MessageRow>> {
        let client = self.client()?;
        Ok(self.inner.start(req, client.announce_async(), |e, msg| msg.epoch = Some(e)))
    }

    #[napi]
    pub fn external_address(&self, req: u32) -> napi::Result<Option<MessageRow>> {
        let client = self.client()?;
        Ok(self.inner.start(req, client.external_address_async(), |a, msg| msg.address = Some(a.to_string())))
    }

    /// Abandons request `req` (its result becomes CANCELLED unless it had arrived).
    #[napi]
    pub fn cancel(&self, req: u32) {
        // Not under the lock: cancelling may complete the request at once.
        let canceller = self.inner.requests().get(&req).cloned();
        if let Some(c) = canceller {
            c.cancel();
        }
    }

    /// The MAP mapping this client holds for `protocol` and `internalPort` (none once closed).
    #[napi]
    pub fn find_mapping(&self, protocol_number: ProtocolArg, internal_port: f64) -> napi::Result<Option<MappingData>> {
        let (p, port) =
            (protocol(&protocol_number).map_err(napi_err)?, port(internal_port, "internalPort").map_err(napi_err)?);
        Ok(self.client.as_ref().and_then(|c| c.find_mapping(p, port)).map(|m| m.info().into()))
    }

    #[napi]
    pub fn mapping(&self, id: f64) -> Option<MappingData> {
        self.client.as_ref()?.mapping(MappingId(id as u64)).map(|m| m.info().into())
    }

    #[napi]
    pub fn mappings(&self) -> Vec<MappingData> {
        self.client.iter().flat_map(|c| c.mappings()).map(|m| m.info().into()).collect()
    }

    /// How many mappings the client holds.
    #[napi]
    pub fn mapping_count(&self) -> u32 {
        self.client.as_ref().map_or(0, |c| c.mapping_count() as u32)
    }

    #[napi]
    pub fn gateway_address(&self) -> napi::Result<String> {
        Ok(self.client()?.gateway_address().to_string())
    }

    #[napi]
    pub fn internal_address(&self) -> napi::Result<String> {
        match (&self.client, self.known()) {
            (None, Some((_, ip))) => Ok(ip.to_string()),
            _ => Ok(self.client()?.internal_address().to_string()),
        }
    }

    /// Sends from `addr` from now on (null: the route's choice again); see
    /// `Client::set_local_address`. Whether our address changed.
    #[napi]
    pub fn set_local_address(&self, addr: Option<String>) -> napi::Result<bool> {
        let ip = addr.map(|a| ip(&a, "addr")).transpose().map_err(napi_err)?;
        self.client()?.set_local_address(ip).map_err(napi_err)
    }

    /// Checks our address towards the server now; whether it changed.
    #[napi]
    pub fn refresh_internal_address(&self) -> napi::Result<bool> {
        self.client()?.refresh_internal_address().map_err(napi_err)
    }

    #[napi]
    pub fn server_epoch(&self) -> Option<u32> {
        match &self.client {
            Some(c) => c.server_epoch(),
            None => self.known().and_then(|(epoch, _)| epoch),
        }
    }

    #[napi]
    pub fn listens_for_announce(&self) -> bool {
        self.client.as_ref().is_some_and(|c| c.listens_for_announce())
    }

    /// Closes off this thread (the core's `close_async`: closing waits for
    /// the deletes) and calls `callback` when done. `keep` leaves the
    /// mappings on the server. From now on requests are CLOSED;
    /// the last epoch and our address stay readable.
    #[napi]
    pub fn close(&mut self, keep: bool, callback: Function<NativeMessage, Unknown<'static>>) -> napi::Result<()> {
        let client = self.client.take().ok_or_else(|| napi_err(PcpError::Closed))?;
        let known = self.known_at_close.clone();
        let remember = move |c: &Client| *known.lock().unwrap_or_else(|e| e.into_inner()) = Some(known_of(c));
        remember(&client);
        // The driver thread reads the answers to the deletes: closing does
        // not depend on this thread's event loop.
        self.stop_reader();
        // The close goes ahead even if the callback cannot be made: then
        // this throws, and JavaScript finishes the close itself.
        let (done, made) = match callback.build_threadsafe_function::<NativeMessage>().build() {
            Ok(done) => (Some(done), Ok(())),
            Err(e) => (None, Err(e)),
        };
        let closing = client.clone();
        client.close_async(keep).on_complete(move |_| {
            remember(&closing);
            if let Some(done) = done {
                done.call(NativeMessage::new("closed"), ThreadsafeFunctionCallMode::NonBlocking);
            }
        });
        made
    }

    fn known(&self) -> Option<Known> {
        *self.known_at_close.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a closed client still tells: the last epoch and our address.
type Known = (Option<u32>, IpAddr);

fn known_of(c: &Client) -> Known {
    (c.server_epoch(), c.internal_address())
}

/// Finds the PCP server (the core's `discover_async`, off this thread); `callback` gets a message
/// with `server`, `epoch` and `address` (our address towards it), or an error.
#[napi]
pub fn discover(
    options: Option<DiscoverOptions>,
    callback: Function<NativeMessage, Unknown<'static>>,
) -> napi::Result<()> {
    let config = discovery_config(options.unwrap_or_default()).map_err(napi_err)?;
    let done: ThreadsafeFunction<NativeMessage, Unknown<'static>, NativeMessage, Status, false> =
        callback.build_threadsafe_function::<NativeMessage>().build()?;
    pcp_core::client::discover_async(config).on_complete(move |r| {
        let msg = match r {
            Ok(found) => {
                let mut m = NativeMessage::new("done");
                m.server = Some(found.server.to_string());
                m.epoch = Some(found.epoch);
                m.address = Some(found.internal_addr.to_string());
                m
            }
            Err(e) => NativeMessage::new("done").error(&e),
        };
        done.call(msg, ThreadsafeFunctionCallMode::NonBlocking);
    });
    Ok(())
}

/// Every stable error code, in the order of the core's registry.
#[napi]
pub fn error_codes() -> Vec<&'static str> {
    ErrorCode::ALL.iter().map(|c| c.name).collect()
}

/// The codes of the short-term refusals (RFC 6887 section 7.4), from the registry.
#[napi]
pub fn short_term_codes() -> Vec<&'static str> {
    ErrorCode::ALL.iter().filter(|c| c.short_term).map(|c| c.name).collect()
}
