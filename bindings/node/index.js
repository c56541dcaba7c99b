'use strict';
// pcp-rs: a Port Control Protocol (PCP, RFC 6887) client for Node.js.
//
// The protocol (requests, retransmission, renewals, epoch checks, ANNOUNCE)
// runs in the Rust core on its own thread; this file only turns its results
// into Promises, its events into EventEmitter events and its errors into
// `Error`s with a stable `code`. See README.md.

const { EventEmitter } = require('node:events');
// The addon: built from source, or the prebuilt package for this platform (loader.js).
const native = require('./loader.js').loadNative();

// ------------------------------------------------------------------ errors

/** Every stable `err.code` the package uses, from the core. */
const ERROR_CODES = Object.freeze(native.errorCodes());

/** An error from pcp-rs: `code` is one of `ERROR_CODES`. */
class PCPError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = code === 'CANCELLED' ? 'AbortError' : 'PCPError';
    this.code = code;
  }
}

function invalid(message) {
  return new PCPError('INVALID_ARGUMENT', message);
}

// Native functions throw "CODE\0message" for errors they report synchronously.
function fromNative(e) {
  if (e instanceof PCPError) return e;
  const msg = e && typeof e.message === 'string' ? e.message : String(e);
  const nul = msg.indexOf('\u0000');
  if (nul > 0) return new PCPError(msg.slice(0, nul), msg.slice(nul + 1));
  return new PCPError('INVALID_ARGUMENT', msg);
}

function callNative(fn) {
  try {
    return fn();
  } catch (e) {
    throw fromNative(e);
  }
}

function abortError(signal) {
  const reason = signal && signal.reason;
  return new PCPError('CANCELLED', 'the operation was cancelled', reason === undefined ? undefined : { cause: reason });
}

// ------------------------------------------------------------------ native rows

// The native side calls back with a message's fields as arguments, and
// returns mappings as arrays: both are much cheaper for it than building
// objects with named keys. These give the fields names again.

/**
 * A message from the native side (a request's result or an event), from
 * the callback's arguments. A classic MAP result stops after `lifetime`
 * (its mapping row has only id, external address and port, and lifetime);
 * trailing arguments the message lacks are left out.
 */
function message(kind, req, code, text, mappingId, externalAddress, externalPort, lifetime, opcode, protocol,
  internalAddress, internalPort, mappingEpoch, nonce, remoteAddress, remotePort, grantedAt, expiresAt, id, epoch,
  address, oldAddress, server, protocolVersion) {
  let mapping;
  if (mappingId !== undefined) {
    mapping = [mappingId, opcode, protocol, internalAddress, internalPort, externalAddress, externalPort, lifetime,
      mappingEpoch, nonce, remoteAddress, remotePort, grantedAt, expiresAt, protocolVersion];
  }
  return { kind, req, code, message: text, mapping, id, epoch, address, oldAddress, server };
}

// A mapping row: [id, opcode, protocol, internalAddress, internalPort,
// externalAddress, externalPort, lifetime, epoch, nonce, remoteAddress,
// remotePort, grantedAt, expiresAt, protocolVersion] (times in ms since
// 1970, the core's; protocolVersion 'pcp' or 'natpmp').
const ROW_ID = 0;
const ROW_EXTERNAL_ADDRESS = 5;
const ROW_EXTERNAL_PORT = 6;
const ROW_LIFETIME = 7;

// ------------------------------------------------------------------ arguments

const EVENTS = new Set(['renewed', 'lost', 'failed', 'deleted', 'ipChanged', 'serverRestarted']);

const Protocol = Object.freeze({ ALL: 0, TCP: 6, UDP: 17 });
/** The PCP options this client supports (their codes on the wire). */
const Option = Object.freeze({ THIRD_PARTY: 1, PREFER_FAILURE: 2, FILTER: 3 });

function describe(v) {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return `${String(v)} (${typeof v})`;
}

function toInt(v, name, min, max) {
  let n = v;
  if (typeof v === 'string' && /^\s*\d+\s*$/.test(v)) n = Number(v);
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw invalid(`${name} must be an integer ${min}..${max}, got ${describe(v)}`);
  }
  return n;
}

function toProtocol(v, name = 'protocol') {
  if (typeof v === 'string') {
    const p = { tcp: 6, udp: 17, all: 0, any: 0 }[v.trim().toLowerCase()];
    if (p !== undefined) return p;
  }
  try {
    return toInt(v, name, 0, 255);
  } catch {
    throw invalid(`${name} must be 6 (TCP), 17 (UDP), another protocol number 0..255, 'tcp' or 'udp', got ${describe(v)}`);
  }
}

function toAddress(v, name) {
  if (typeof v !== 'string' || v.trim() === '') throw invalid(`${name} must be an IP address string, got ${describe(v)}`);
  return v.trim();
}

// A number of milliseconds; its range is the core's to check.
function optionalMs(v, name) {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number') throw invalid(`${name} must be a number of milliseconds, got ${describe(v)}`);
  return v;
}

function checkSignal(signal) {
  if (signal === undefined || signal === null) return undefined;
  if (typeof signal !== 'object' || typeof signal.aborted !== 'boolean' || typeof signal.addEventListener !== 'function') {
    throw invalid(`signal must be an AbortSignal, got ${describe(signal)}`);
  }
  return signal;
}

function checkObject(v, name) {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object') throw invalid(`${name} must be an object, got ${describe(v)}`);
  return v;
}

function clientOptions(o) {
  o = checkObject(o, 'options');
  const out = {};
  if (o.listenAnnounce !== undefined) out.listenAnnounce = Boolean(o.listenAnnounce);
  if (o.deadline !== undefined) out.deadlineMs = optionalMs(o.deadline, 'deadline');
  if (o.deleteOnClose !== undefined) out.deleteOnClose = Boolean(o.deleteOnClose);
  if (o.closeTimeout !== undefined) out.closeTimeoutMs = optionalMs(o.closeTimeout, 'closeTimeout');
  if (o.localAddress !== undefined) out.localAddress = toAddress(o.localAddress, 'localAddress');
  if (o.announcePort !== undefined) out.announcePort = toInt(o.announcePort, 'announcePort', 1, 65535);
  if (o.announceDelayMax !== undefined) out.announceDelayMaxMs = optionalMs(o.announceDelayMax, 'announceDelayMax');
  if (o.protocol !== undefined) {
    if (!['auto', 'pcp', 'natpmp'].includes(o.protocol)) {
      throw invalid(`protocol must be 'auto', 'pcp' or 'natpmp', got ${describe(o.protocol)}`);
    }
    out.protocol = o.protocol;
  }
  return out;
}

function discoverOptions(o) {
  o = checkObject(o, 'options');
  const out = {};
  const list = (v, name) => {
    if (!Array.isArray(v)) throw invalid(`${name} must be an array of "host[:port]" strings, got ${describe(v)}`);
    return v.map((s, i) => toAddress(s, `${name}[${i}]`));
  };
  if (o.candidates !== undefined) out.candidates = list(o.candidates, 'candidates');
  if (o.servers !== undefined) out.servers = list(o.servers, 'servers');
  if (o.deadline !== undefined) out.deadlineMs = optionalMs(o.deadline, 'deadline');
  if (o.initialTimeout !== undefined) out.initialTimeoutMs = optionalMs(o.initialTimeout, 'initialTimeout');
  return out;
}

// MAP arguments for the native side: four numbers, and `options` (an
// object) only when a rarely used option is given.
function mapOptions(o) {
  const out = {
    protocol: o.protocol === undefined ? 6 : toProtocol(o.protocol),
    internalPort: toInt(o.internalPort, 'internalPort', 0, 65535),
    externalPort: 0,
    lifetime: 3600,
    options: undefined,
  };
  if (o.externalPort !== undefined && o.externalPort !== null) out.externalPort = toInt(o.externalPort, 'externalPort', 0, 65535);
  if (o.lifetime !== undefined && o.lifetime !== null) out.lifetime = toInt(o.lifetime, 'lifetime', 0, 0xffffffff);
  // Made only when needed: most calls give none of these.
  let more;
  if (o.externalAddress !== undefined && o.externalAddress !== null) {
    (more ??= {}).externalAddress = toAddress(o.externalAddress, 'externalAddress');
  }
  if (o.preferFailure !== undefined) {
    (more ??= {}).preferFailure = Boolean(o.preferFailure);
  }
  if (o.thirdParty !== undefined && o.thirdParty !== null) {
    (more ??= {}).thirdParty = toAddress(o.thirdParty, 'thirdParty');
  }
  if (o.filters !== undefined && o.filters !== null) {
    if (!Array.isArray(o.filters)) throw invalid(`filters must be an array, got ${describe(o.filters)}`);
    (more ??= {}).filters = o.filters.map((f, i) => {
      f = checkObject(f, `filters[${i}]`);
      const r = { remoteAddress: toAddress(f.remoteAddress, `filters[${i}].remoteAddress`) };
      if (f.prefixLength !== undefined) r.prefixLength = toInt(f.prefixLength, `filters[${i}].prefixLength`, 0, 128);
      if (f.remotePort !== undefined) r.remotePort = toInt(f.remotePort, `filters[${i}].remotePort`, 0, 65535);
      return r;
    });
  }
  if (o.nonce !== undefined && o.nonce !== null) {
    if (typeof o.nonce !== 'string') throw invalid(`nonce must be 24 hex digits, got ${describe(o.nonce)}`);
    (more ??= {}).nonce = o.nonce;
  }
  if (o.deadline !== undefined && o.deadline !== null) {
    (more ??= {}).deadlineMs = optionalMs(o.deadline, 'deadline');
  }
  out.options = more;
  return out;
}

function peerOptions(o) {
  const out = {
    protocol: o.protocol === undefined ? 6 : toProtocol(o.protocol),
    internalPort: toInt(o.internalPort, 'internalPort', 0, 65535),
    remoteAddress: toAddress(o.remoteAddress, 'remoteAddress'),
    remotePort: toInt(o.remotePort, 'remotePort', 0, 65535),
  };
  if (o.externalPort !== undefined && o.externalPort !== null) out.externalPort = toInt(o.externalPort, 'externalPort', 0, 65535);
  if (o.externalAddress !== undefined && o.externalAddress !== null) out.externalAddress = toAddress(o.externalAddress, 'externalAddress');
  if (o.lifetime !== undefined && o.lifetime !== null) out.lifetime = toInt(o.lifetime, 'lifetime', 0, 0xffffffff);
  if (o.thirdParty !== undefined && o.thirdParty !== null) out.thirdParty = toAddress(o.thirdParty, 'thirdParty');
  if (o.nonce !== undefined && o.nonce !== null) {
    if (typeof o.nonce !== 'string') throw invalid(`nonce must be 24 hex digits, got ${describe(o.nonce)}`);
    out.nonce = o.nonce;
  }
  if (o.deadline !== undefined) out.deadlineMs = optionalMs(o.deadline, 'deadline');
  return out;
}

// ------------------------------------------------------------------ discovery

/**
 * Finds the PCP server: the default gateways (or exactly `candidates`), then
 * `servers`. Resolves `{ server, epoch, internalAddress }`.
 */
function discover(options) {
  let opts;
  let signal;
  try {
    signal = checkSignal(options && options.signal);
    opts = discoverOptions(options);
  } catch (e) {
    return Promise.reject(e);
  }
  if (signal && signal.aborted) return Promise.reject(abortError(signal));
  return new Promise((resolve, reject) => {
    let settled = false;
    const onAbort = () => {
      // Discovery itself is bounded (2 s by default) and cannot be stopped
      // midway; its result is ignored.
      settled = true;
      reject(abortError(signal));
    };
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
    try {
      native.discover(opts, (...args) => {
        const msg = message(...args);
        if (signal) signal.removeEventListener('abort', onAbort);
        if (settled) return;
        settled = true;
        if (msg.code) reject(new PCPError(msg.code, msg.message));
        else resolve({ server: msg.server, epoch: msg.epoch, internalAddress: msg.address });
      });
    } catch (e) {
      if (signal) signal.removeEventListener('abort', onAbort);
      reject(fromNative(e));
    }
  });
}

// ------------------------------------------------------------------ Mapping

/** A mapping held by a Client; renewed in the background until deleted. */
class Mapping {
  #client;

  constructor(client, data) {
    this.#client = client;
    this._update(data);
  }

  // `d`: a mapping row from the native side.
  _update(d) {
    this.id = d[ROW_ID];
    this.opcode = d[1];
    this.protocol = d[2];
    this.internalAddress = d[3];
    this.internalPort = d[4];
    this.externalAddress = d[ROW_EXTERNAL_ADDRESS];
    this.externalPort = d[ROW_EXTERNAL_PORT];
    this.lifetime = d[ROW_LIFETIME];
    this.epoch = d[8];
    this.nonce = d[9];
    this.remoteAddress = d[10] === undefined ? null : d[10];
    this.remotePort = d[11] === undefined ? null : d[11];
    // The core's times: reading a mapping again gives the same dates
    // until a renewal moves them on.
    this.grantedAt = new Date(d[12]);
    this._expiresAt = d[13];
    /** 'pcp' or 'natpmp': what the gateway granted the mapping with. */
    this.protocolVersion = d[14];
    return this;
  }

  /** When the mapping ends unless renewed (the renewals move it on). */
  get expiresAt() {
    return new Date(this._expiresAt);
  }

  /** Whether the client still holds the mapping. */
  get active() {
    return this.#client._holds(this.id);
  }

  /** Re-reads the current state from the client; false if it is gone. */
  refresh() {
    return this.#client._refresh(this);
  }

  /** Deletes the mapping on the server. */
  delete(options) {
    return this.#client.delete(this, options);
  }
}

// ------------------------------------------------------------------ Client

/**
 * The full client. Events:
 * - `renewed` (mapping): a renewal succeeded (also after a server restart);
 * - `lost` (mapping, error): renewals failed until the mapping expired;
 * - `failed` (id, error): the first request for a mapping failed (its
 *   Promise rejects with the same error);
 * - `deleted` (id): a mapping is gone after a delete;
 * - `ipChanged` (oldAddress, newAddress): the external address changed;
 * - `serverRestarted` (epoch): the server lost its state; every mapping is
 *   being recreated;
 * - `close` (): the client is closed.
 */
class Client extends EventEmitter {
  /**
   * @param {string} server "host", "host:port", an IPv4 or IPv6 address.
   * @param {object} [options] listenAnnounce, deadline (ms), deleteOnClose,
   *   closeTimeout (ms), localAddress, announcePort, announceDelayMax (ms).
   */
  constructor(server, options) {
    super();
    if (typeof server !== 'string' || server.trim() === '') {
      throw invalid(`server must be "host", "host:port" or an IP address, got ${describe(server)}`);
    }
    const opts = clientOptions(options);
    this._reqs = new Map();
    // The Mapping objects handed out, by id, so that events update the same
    // ones. The classic API makes none: a round trip is cheaper without.
    this._mappings = new Map();
    this._nextReq = 1;
    this._wantRef = true;
    this._listening = false;
    this._closed = false;
    this._closePromise = null;
    this._holding = false; // whether the client holds a mapping (keeps the process alive)
    this._refWanted = false; // what _updateRef last asked the native side
    this._native = callNative(() => new native.NativeClient(server, opts, (...args) => this._onMessage(message(...args))));
    // The core forwards events only while someone listens for one.
    this.on('newListener', (event) => {
      if (EVENTS.has(event) && !this._listening && !this._closed) {
        this._listening = true;
        this._native.listen();
      }
    });
    this.on('removeListener', (event) => {
      if (!EVENTS.has(event) || !this._listening || this._closed) return;
      for (const e of EVENTS) if (this.listenerCount(e) > 0) return;
      this._listening = false;
      this._native.unlisten();
      this._updateRef();
    });
    /** The PCP server, "ip:port". */
    this.server = this._native.gatewayAddress();
  }

  /**
   * Finds the PCP server (see `discover`: `candidates`, `servers`,
   * `discoveryDeadline` (ms), `initialTimeout` (ms), `signal`) and connects to
   * it with the remaining options.
   */
  static async discover(options) {
    const o = { ...checkObject(options, 'options') };
    const found = await discover({
      candidates: o.candidates,
      servers: o.servers,
      deadline: o.discoveryDeadline,
      initialTimeout: o.initialTimeout,
      signal: o.signal,
    });
    for (const k of ['candidates', 'servers', 'discoveryDeadline', 'initialTimeout', 'signal']) delete o[k];
    return new Client(found.server, o);
  }

  // --- keeping the process alive

  /** Background renewals no longer keep the process alive (requests in flight still do). */
  unref() {
    this._wantRef = false;
    this._updateRef();
    return this;
  }

  /** Undoes `unref()`. */
  ref() {
    this._wantRef = true;
    this._updateRef();
    return this;
  }

  _updateRef() {
    if (this._closed) return;
    const want = this._reqs.size > 0 || (this._wantRef && this._holding);
    // Referenced stays referenced whatever the native side adds (events
    // due), so only a change needs the call.
    if (want && this._refWanted) return;
    this._refWanted = want;
    this._native.setRef(want);
  }

  // --- requests

  _request(start, convert, signal) {
    if (this._closed || this._closePromise) return Promise.reject(new PCPError('CLOSED', 'the client is closed'));
    if (signal && signal.aborted) return Promise.reject(abortError(signal));
    const req = this._nextReq;
    this._nextReq = this._nextReq >= 0xfffffff0 ? 1 : this._nextReq + 1;
    let msg;
    try {
      msg = start(req);
    } catch (e) {
      return Promise.reject(fromNative(e));
    }
    if (msg) msg = message(...msg);
    if (msg) return msg.code ? Promise.reject(new PCPError(msg.code, msg.message)) : Promise.resolve(convert(msg));
    return new Promise((resolve, reject) => {
      const entry = { resolve, reject, convert, signal, onAbort: null, aborted: false };
      if (signal) {
        entry.onAbort = () => {
          entry.aborted = true;
          this._native.cancel(req);
        };
        signal.addEventListener('abort', entry.onAbort, { once: true });
      }
      this._reqs.set(req, entry);
      this._updateRef();
    });
  }

  _onMessage(msg) {
    switch (msg.kind) {
      case 'done': {
        const entry = this._reqs.get(msg.req);
        if (!entry) return;
        this._reqs.delete(msg.req);
        if (entry.signal) entry.signal.removeEventListener('abort', entry.onAbort);
        if (entry.aborted) {
          // The answer beat the cancellation: undo what it made.
          if (msg.mapping && !msg.code) this.delete(msg.mapping[ROW_ID]).catch(() => {});
          entry.reject(abortError(entry.signal));
        } else if (msg.code === 'CANCELLED' && this._closePromise) {
          // close() deletes a mapping still being made, which the core reports
          // as CANCELLED; to the caller the client was closed.
          entry.reject(new PCPError('CLOSED', 'the client was closed before the answer'));
        } else if (msg.code) {
          entry.reject(new PCPError(msg.code, msg.message));
        } else {
          let value;
          try {
            value = entry.convert(msg);
          } catch (e) {
            entry.reject(e);
            this._updateRef();
            return;
          }
          entry.resolve(value);
        }
        this._updateRef();
        return;
      }
      case 'renewed': {
        let m = this._mappings.get(msg.id);
        if (m) m._update(msg.mapping);
        else {
          m = new Mapping(this, msg.mapping);
          this._mappings.set(m.id, m);
        }
        this.emit('renewed', m);
        return;
      }
      case 'lost': {
        const m = this._mappings.get(msg.id);
        this._forget(msg.id);
        this._updateRef();
        this.emit('lost', m || { id: msg.id }, new PCPError(msg.code, msg.message));
        return;
      }
      case 'failed':
        this.emit('failed', msg.id, new PCPError(msg.code, msg.message));
        return;
      case 'deleted':
        this._forget(msg.id);
        this._updateRef();
        this.emit('deleted', msg.id);
        return;
      case 'ipChanged':
        this.emit('ipChanged', msg.oldAddress, msg.address);
        return;
      case 'serverRestarted':
        this.emit('serverRestarted', msg.epoch);
        return;
      case 'sync':
        // The events of the results delivered so far are all here: the
        // native side no longer needs to keep the process alive for them.
        this._native.synced();
        this._updateRef();
        return;
      default:
    }
  }

  _track(msg) {
    const m = new Mapping(this, msg.mapping);
    this._mappings.set(m.id, m);
    this._holding = true;
    return m;
  }

  _forget(id) {
    this._mappings.delete(id);
    // Whether any is left is the core's to say (it keeps the count).
    this._holding = !this._closed && this._native.mappingCount() > 0;
  }

  /**
   * Asks for an inbound mapping (MAP). `map(8080)`, `map(8080, { protocol: 'udp' })`
   * or `map({ internalPort: 8080, ... })`. Options: protocol (6), externalPort
   * (0: any), externalAddress, lifetime (3600 s), preferFailure, thirdParty,
   * filters [{ remoteAddress, prefixLength, remotePort }], nonce, deadline
   * (ms), signal.
   */
  map(internalPortOrSpec, options) {
    let o;
    try {
      o = typeof internalPortOrSpec === 'object' && internalPortOrSpec !== null
        ? internalPortOrSpec
        : { ...checkObject(options, 'options'), internalPort: internalPortOrSpec };
    } catch (e) {
      return Promise.reject(e);
    }
    return this._map(o, false);
  }

  // MAP with the options object `o`; resolves a Mapping, or for the
  // classic API `{ externalIP, externalPort, lifetime }`.
  _map(o, classic) {
    let spec;
    let signal;
    try {
      signal = checkSignal(o.signal);
      spec = mapOptions(o);
    } catch (e) {
      return Promise.reject(e);
    }
    return this._request((req) => this._native.map(req, spec.protocol, spec.internalPort, spec.externalPort, spec.lifetime, spec.options, classic), classic ? (msg) => this._holdClassic(msg) : (msg) => this._track(msg), signal);
  }

  _holdClassic(msg) {
    const row = msg.mapping;
    this._holding = true;
    return { externalIP: row[ROW_EXTERNAL_ADDRESS], externalPort: row[ROW_EXTERNAL_PORT], lifetime: row[ROW_LIFETIME] };
  }

  /**
   * Asks for an outbound mapping towards one peer (PEER):
   * `{ internalPort, remoteAddress, remotePort, protocol, externalPort, externalAddress, lifetime, thirdParty, nonce, deadline, signal }`.
   */
  peer(spec) {
    let o;
    let signal;
    try {
      if (typeof spec !== 'object' || spec === null) throw invalid(`peer() takes an object, got ${describe(spec)}`);
      signal = checkSignal(spec.signal);
      o = peerOptions(spec);
    } catch (e) {
      return Promise.reject(e);
    }
    return this._request((req) => this._native.peer(req, o), (msg) => this._track(msg), signal);
  }

  /** Deletes a mapping (a Mapping or its id) on the server. */
  delete(mapping, options) {
    let id;
    let signal;
    try {
      id = typeof mapping === 'object' && mapping !== null ? mapping.id : mapping;
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
        throw invalid(`delete() takes a Mapping or a mapping id, got ${describe(mapping)}`);
      }
      signal = checkSignal(checkObject(options, 'options').signal);
    } catch (e) {
      return Promise.reject(e);
    }
    return this._request(
      (req) => this._native.delete(req, id),
      () => {
        this._forget(id);
        return undefined;
      },
      signal,
    );
  }

  /** Sends ANNOUNCE; resolves the server's epoch (seconds). */
  announce(options) {
    let signal;
    try {
      signal = checkSignal(checkObject(options, 'options').signal);
    } catch (e) {
      return Promise.reject(e);
    }
    return this._request((req) => this._native.announce(req), (msg) => msg.epoch, signal);
  }

  /** The gateway's external address. */
  externalAddress(options) {
    let signal;
    try {
      signal = checkSignal(checkObject(options, 'options').signal);
    } catch (e) {
      return Promise.reject(e);
    }
    return this._request((req) => this._native.externalAddress(req), (msg) => msg.address, signal);
  }

  /** The PCP server's IP address (erlang-nat's get_device_address). */
  async gatewayAddress() {
    const s = this.server;
    return s.startsWith('[') ? s.slice(1, s.lastIndexOf(']')) : s.slice(0, s.lastIndexOf(':'));
  }

  /** Our address towards the server (the Client IP field of every request). */
  async internalAddress() {
    if (this._closed) throw new PCPError('CLOSED', 'the client is closed');
    return callNative(() => this._native.internalAddress());
  }

  /** The server's last reported epoch, or null. */
  get serverEpoch() {
    return this._closed ? null : this._native.serverEpoch();
  }

  /** Whether the client listens for unsolicited ANNOUNCE. */
  get listensForAnnounce() {
    return !this._closed && this._native.listensForAnnounce();
  }

  /** The mappings this client holds (current snapshots). */
  mappings() {
    if (this._closed) return [];
    return this._native.mappings().map((d) => {
      const m = this._mappings.get(d[ROW_ID]);
      return m ? m._update(d) : new Mapping(this, d);
    });
  }

  /** The MAP mapping this client holds for `internalPort` and `protocol`, or null. */
  findMapping(internalPort, protocol = 6) {
    const p = toProtocol(protocol);
    const port = toInt(internalPort, 'internalPort', 0, 65535);
    if (this._closed) return null;
    const d = callNative(() => this._native.findMapping(p, port));
    if (!d) return null;
    const m = this._mappings.get(d[ROW_ID]);
    return m ? m._update(d) : new Mapping(this, d);
  }

  _holds(id) {
    return !this._closed && this._native.mapping(id) !== null;
  }

  _refresh(m) {
    if (this._closed) return false;
    const d = this._native.mapping(m.id);
    if (!d) return false;
    m._update(d);
    return true;
  }

  get closed() {
    return this._closed;
  }

  /**
   * Deletes the client's mappings (unless `deleteOnClose` is false, or
   * `{ keepMappings: true }`) and stops it. Resolves when done; idempotent.
   * Afterwards the client keeps nothing alive.
   */
  close(options) {
    if (this._closePromise) return this._closePromise;
    const keep = Boolean(options && options.keepMappings);
    this._closePromise = new Promise((resolve) => {
      const finish = () => {
        this._closed = true;
        this._native.setRef(false);
        for (const [, entry] of this._reqs) {
          if (entry.signal) entry.signal.removeEventListener('abort', entry.onAbort);
          entry.reject(new PCPError('CLOSED', 'the client is closed'));
        }
        this._reqs.clear();
        this._mappings.clear();
        this._holding = false;
        resolve();
        this.emit('close');
      };
      try {
        this._native.close(keep, finish);
      } catch {
        finish();
      }
    });
    return this._closePromise;
  }
}

// ------------------------------------------------------------------ PCPClient

function toPeerResult(m) {
  return {
    externalIP: m.externalAddress,
    externalPort: m.externalPort,
    lifetime: m.lifetime,
    internalPort: m.internalPort,
    protocol: m.protocol,
    peerIP: m.remoteAddress,
    peerPort: m.remotePort,
  };
}

/**
 * The classic client: `new PCPClient(serverIP)` (no argument: discover),
 * Promise-returning `createMapping`, `deleteMapping`, `createPeerMapping`,
 * and `close()`. Mappings are renewed in the background until deleted or
 * closed. The optional second argument takes the `Client` options and, for
 * discovery, `candidates` / `servers` / `deadline`.
 */
class PCPClient {
  constructor(serverIP, options) {
    const o = checkObject(options, 'options');
    if (serverIP === undefined || serverIP === null || serverIP === '') {
      this._ready = Client.discover(o);
    } else {
      this._ready = Promise.resolve(new Client(serverIP, o));
    }
    this._client = null;
    this._unref = false;
    // A failed discovery is reported by the calls that need it.
    this._ready.then(
      (c) => {
        this._client = c;
        if (this._unref) c.unref();
      },
      () => {},
    );
  }

  /** The full `Client` behind this one (a Promise while discovering). */
  client() {
    return this._ready;
  }

  /** Maps TCP (6) or UDP (17) `internalPort`; resolves `{ externalIP, externalPort, lifetime }`. */
  createMapping(internalPort, externalPort = 0, protocol = 6, lifetime = 3600) {
    const spec = { internalPort, externalPort, protocol, lifetime };
    // Not an async function: once connected, the Promise is the request's own.
    if (this._client) return this._client._map(spec, true);
    return this._ready.then((c) => c._map(spec, true));
  }

  /** Deletes the mapping this client made for `internalPort` and `protocol`. */
  /** Nothing to do if it holds none (the core's rule, in every language). */
  async deleteMapping(internalPort, protocol = 6) {
    const c = this._client || (await this._ready);
    const p = toProtocol(protocol);
    const port = toInt(internalPort, 'internalPort', 0, 65535);
    await c._request((req) => c._native.deletePort(req, p, port), () => c._forget(undefined), undefined);
  }

  /**
   * Asks for a PEER mapping towards `peerIP:peerPort`; resolves `{ externalIP,
   * externalPort, lifetime, internalPort, protocol, peerIP, peerPort }`.
   */
  async createPeerMapping(internalPort, peerIP, peerPort, protocol = 6, lifetime = 3600) {
    const c = this._client || (await this._ready);
    const m = await c.peer({ internalPort, remoteAddress: peerIP, remotePort: peerPort, protocol, lifetime });
    return toPeerResult(m);
  }

  /** Background renewals no longer keep the process alive. */
  unref() {
    this._unref = true;
    if (this._client) this._client.unref();
    return this;
  }

  /** Deletes the mappings and stops; resolves when done. */
  async close() {
    let c;
    try {
      c = await this._ready;
    } catch {
      return;
    }
    await c.close();
  }
}

// ------------------------------------------------------------------ testing

/**
 * The core's PCP test server on loopback, for testing applications without
 * a router: `new testing.Server()`, then `new PCPClient(server.address)`.
 */
class Server {
  /**
   * @param {object} [options] listen ("127.0.0.1:0"), externalAddress
   *   ("203.0.113.7"), minLifetime, maxLifetime, portRangeStart,
   *   portRangeEnd, allowThirdParty, initialEpoch (seconds "up" at start;
   *   a reboot restarts from 0).
   */
  constructor(options) {
    const o = checkObject(options, 'options');
    this._native = callNative(() => new native.NativeServer(o));
    /** "ip:port" to give a client. */
    this.address = this._native.address();
    this.host = this._native.host();
    this.port = this._native.port();
  }

  get externalAddress() {
    return callNative(() => this._native.externalAddress());
  }

  /** Silently drops the next `n` requests. */
  dropNext(n) {
    callNative(() => this._native.dropNext(toInt(n, 'n', 0, 0xffffffff)));
  }

  /** Delays every answer by `ms` (0 to stop). */
  setDelay(ms) {
    if (typeof ms !== 'number' || !(ms >= 0)) throw invalid(`delay must be a number of milliseconds >= 0, got ${describe(ms)}`);
    callNative(() => this._native.setDelay(ms));
  }

  /**
   * Answers every MAP and PEER with the result code (a name such as
   * 'NO_RESOURCES') and error lifetime; `null` answers normally again.
   */
  forceResult(code, lifetime = 30) {
    if (code !== null && code !== undefined && typeof code !== 'string') {
      throw invalid(`code must be a PCP result code name or null, got ${describe(code)}`);
    }
    callNative(() => this._native.forceResult(code === undefined ? null : code, toInt(lifetime, 'lifetime', 0, 0xffffffff)));
  }

  /**
   * Answers MAP and PEER requests that create or renew a mapping with the
   * crafted datagrams of the named hostile case (the names of
   * tests/hostile/cases.json, e.g. 'wrong_nonce'); `null` answers normally again.
   */
  setHostile(name) {
    if (name !== null && typeof name !== 'string') throw invalid(`name must be a hostile case name or null, got ${describe(name)}`);
    callNative(() => this._native.setHostile(name));
  }

  /** Loses this fraction (0 to 1) of the datagrams, each way. */
  setLoss(fraction) {
    if (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= 1)) {
      throw invalid(`fraction must be a number from 0 to 1, got ${describe(fraction)}`);
    }
    callNative(() => this._native.setLoss(fraction));
  }

  /** Loses all state, restarts the epoch at 0 and announces it. */
  reboot() {
    callNative(() => this._native.reboot());
  }

  /** Changes the external address and announces it. */
  setExternalAddress(address) {
    callNative(() => this._native.setExternalAddress(toAddress(address, 'address')));
  }

  get epoch() {
    return callNative(() => this._native.epoch());
  }

  /** Live mappings, as the server holds them. */
  mappings() {
    return callNative(() => this._native.mappings());
  }

  get mappingCount() {
    return callNative(() => this._native.mappingCount());
  }

  get requestsReceived() {
    return callNative(() => this._native.requestsReceived());
  }

  /** Stops the server; idempotent. */
  stop() {
    this._native.stop();
  }
}

module.exports = {
  PCPClient,
  Client,
  Mapping,
  PCPError,
  ERROR_CODES,
  Protocol,
  Option,
  discover,
  testing: { Server },
};
