'use strict';
// `discover`, `Mapping` and `Client`: Promises and events over the native client.

const { EventEmitter } = require('node:events');
const native = require('./load-native');
const { PCPError, invalid, typeError, fromNative, callNative, convertErrors, abortError, errorOf } = require('./errors');
const {
  EVENTS, describe, toNumber, toProtocol, checkSignal, checkObject, optionsSignal, discoverOptions, requestOptions,
} = require('./args');

const NativeClient = convertErrors(native.NativeClient);

// The native side calls back with a message's fields as arguments (see
// `message!` in src/message.rs, which defines their order once); this
// function, generated from that order when the package loads, names them:
// `{ kind, req, code, message, retryAfter, id, address, port, lifetime,
// mapping, epoch, oldAddress, server }`.
// eslint-disable-next-line no-new-func
const message = new Function(...native.messageFields(), `return { ${native.messageFields().join(', ')} };`);

// Runs `fn`; what it throws (a bad argument) becomes a rejected Promise: the
// Promise-returning calls reject, never throw.
function rejecting(fn) {
  try {
    return fn();
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Finds the PCP server: the default gateways (or exactly `candidates`), then
 * `servers`. Resolves `{ server, epoch, internalAddress }`.
 */
function discover(options) {
  return rejecting(() => {
    const signal = checkSignal(options && options.signal);
    const opts = discoverOptions(options);
    if (signal && signal.aborted) throw abortError(signal);
    return new Promise((resolve, reject) => {
      // Discovery itself is bounded (2 s by default) and cannot be stopped
      // midway: an abort only drops its result.
      const onAbort = () => reject(abortError(signal));
      if (signal) signal.addEventListener('abort', onAbort, { once: true });
      const settle = (error, found) => {
        if (signal) signal.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else resolve(found);
      };
      try {
        native.discover(opts, (...args) => {
          const msg = message(...args);
          settle(msg.code && errorOf(msg), { server: msg.server, epoch: msg.epoch, internalAddress: msg.address });
        });
      } catch (e) {
        settle(fromNative(e));
      }
    });
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

  // `d`: the mapping as the native side sends it.
  _update(d) {
    Object.assign(this, d);
    // The core's times (ms since 1970): the same until a renewal moves them.
    this.grantedAt = new Date(d.grantedAt);
    this.expiresAt = new Date(d.expiresAt);
    return this;
  }

  /** Whether the client still holds the mapping. */
  get active() {
    return this.#client._native.mapping(this.id) !== null;
  }

  /** Re-reads the current state from the client; false if it is gone. */
  refresh() {
    const d = this.#client._native.mapping(this.id);
    if (d) this._update(d);
    return d !== null;
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
 * - `deleted` (id, error): a delete finished: without an error the mapping
 *   is gone; with one (the delete failed) the client holds it again;
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
    // A non-string is a TypeError (as in Python); the core judges the string,
    // so an empty one gets the same message in every language.
    if (typeof server !== 'string') {
      throw typeError(`server must be a string like "192.168.1.1", "192.168.1.1:5351" or "[::1]:5351", got ${describe(server)}`);
    }
    const opts = checkObject(options, 'options');
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
    this._native = callNative(() => new NativeClient(server, opts, (...args) => this._onMessage(message(...args))));
    // The core forwards events only while someone listens for one (and not
    // once closing: the native client is gone, and 'close' is ours).
    this.on('newListener', (event) => {
      if (EVENTS.has(event) && !this._listening && !this._closePromise) {
        this._listening = true;
        this._native.listen();
      }
    });
    this.on('removeListener', (event) => {
      if (!EVENTS.has(event) || !this._listening || this._closePromise) return;
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
    const { candidates, servers, discoveryDeadline, initialTimeout, signal, ...rest } = checkObject(options, 'options');
    const found = await discover({ candidates, servers, deadline: discoveryDeadline, initialTimeout, signal });
    return new Client(found.server, rest);
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

  // Starts request number `req` with `start(req)`, which calls the native
  // side; `convert` makes the value of its result. `options`: the call's
  // options object, for its `signal`. Never throws: rejects.
  _request(start, convert, options) {
    const req = this._nextReq;
    let signal;
    let msg;
    try {
      signal = optionsSignal(options);
      if (this._closed || this._closePromise) throw new PCPError('CLOSED', 'the client is closed');
      if (signal && signal.aborted) throw abortError(signal);
      this._nextReq = req >= 0xfffffff0 ? 1 : req + 1;
      msg = start(req);
      if (msg) msg = message(...msg);
    } catch (e) {
      return Promise.reject(fromNative(e));
    }
    if (msg) return msg.code ? Promise.reject(errorOf(msg)) : Promise.resolve(convert(msg));
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
          if (msg.id !== undefined && !msg.code) this.delete(msg.id).catch(() => {});
          entry.reject(abortError(entry.signal));
        } else if (msg.code) {
          entry.reject(errorOf(msg));
        } else {
          try {
            entry.resolve(entry.convert(msg));
          } catch (e) {
            entry.reject(e);
          }
        }
        this._updateRef();
        return;
      }
      case 'renewed':
      case 'updated': {
        // The Mapping handed out for it, updated; a renewal's new one is kept too.
        let m = this._mappings.get(msg.id);
        if (m) m._update(msg.mapping);
        else {
          m = new Mapping(this, msg.mapping);
          if (msg.kind === 'renewed') this._mappings.set(m.id, m);
        }
        this.emit(msg.kind, m);
        return;
      }
      case 'lost': {
        const m = this._mappings.get(msg.id);
        this._forget(msg.id);
        this._updateRef();
        this.emit('lost', m || { id: msg.id }, errorOf(msg));
        return;
      }
      case 'failed':
        this.emit('failed', msg.id, errorOf(msg));
        return;
      case 'deleted':
        // A failed delete leaves the mapping held (the core's rule).
        if (!msg.code) this._forget(msg.id);
        this._updateRef();
        this.emit('deleted', msg.id, msg.code ? errorOf(msg) : undefined);
        return;
      case 'ipChanged':
      case 'internalIpChanged':
        this.emit(msg.kind, msg.oldAddress, msg.address);
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
    this._holding = this._native.mappingCount() > 0;
  }

  /**
   * Asks for an inbound mapping (MAP). `map(8080)`, `map(8080, { protocol: 'udp' })`
   * or `map({ internalPort: 8080, ... })`. Options: protocol (6), externalPort
   * (0: any), externalAddress, lifetime (3600 s), preferFailure, thirdParty,
   * filters [{ remoteAddress, prefixLength, remotePort }], nonce, deadline
   * (ms), signal.
   */
  map(internalPortOrSpec, options) {
    return rejecting(() => this._map(typeof internalPortOrSpec === 'object' && internalPortOrSpec !== null
      ? internalPortOrSpec
      : { ...checkObject(options, 'options'), internalPort: internalPortOrSpec }, false));
  }

  // MAP with the options object `o`; resolves a Mapping, or for the
  // classic API `{ externalIP, externalPort, lifetime }`.
  _map(o, classic) {
    return rejecting(() => {
      const s = requestOptions(o, classic);
      if (!classic) return this._request((req) => this._native.map(req, s), (msg) => this._track(msg), o);
      return this._request(
        (req) => this._native.mapPort(req, s.protocol, s.internalPort, s.externalPort, s.lifetime),
        (msg) => this._holdClassic(msg),
        o,
      );
    });
  }

  _holdClassic(msg) {
    this._holding = true;
    return { externalIP: msg.address, externalPort: msg.port, lifetime: msg.lifetime };
  }

  /**
   * Asks for an outbound mapping towards one peer (PEER):
   * `{ internalPort, remoteAddress, remotePort, protocol, externalPort, externalAddress, lifetime, thirdParty, nonce, deadline, signal }`.
   */
  peer(spec) {
    return rejecting(() => {
      const o = requestOptions(checkObject(spec, 'peer() takes an object', true));
      return this._request((req) => this._native.peer(req, o), (msg) => this._track(msg), spec);
    });
  }

  /** Deletes a mapping (a Mapping or its id) on the server. */
  delete(mapping, options) {
    return rejecting(() => {
      const id = typeof mapping === 'object' && mapping !== null ? mapping.id : mapping;
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
        throw invalid(`delete() takes a Mapping or a mapping id, got ${describe(mapping)}`);
      }
      return this._request((req) => this._native.delete(req, id), () => this._forget(id), options);
    });
  }

  /**
   * Deletes a mapping this client does not hold (one another process made),
   * known by its nonce: `{ protocol, internalPort, nonce, thirdParty, signal }`,
   * `thirdParty` for a mapping made for another host (THIRD_PARTY).
   */
  deleteByNonce(spec) {
    return rejecting(() => {
      const o = requestOptions(checkObject(spec, 'deleteByNonce() takes an object', true));
      return this._request((req) => this._native.deleteByNonce(req, o), () => undefined, spec);
    });
  }

  /** Sends ANNOUNCE; resolves the server's epoch (seconds). */
  announce(options) {
    return this._request((req) => this._native.announce(req), (msg) => msg.epoch, options);
  }

  /** The gateway's external address. */
  externalAddress(options) {
    return this._request((req) => this._native.externalAddress(req), (msg) => msg.address, options);
  }

  /** The PCP server's IP address (erlang-nat's get_device_address). */
  async gatewayAddress() {
    const s = this.server;
    return s.startsWith('[') ? s.slice(1, s.lastIndexOf(']')) : s.slice(0, s.lastIndexOf(':'));
  }

  /** Our address towards the server (the Client IP field of every request). */
  async internalAddress() {
    return this._native.internalAddress();
  }

  /**
   * Sends from `addr` from now on (null: the route's choice again), moving
   * the socket at once; if our address changes, the mappings are made again
   * from the new one and 'internalIpChanged' (old, new) is emitted (RFC 6887
   * section 11.5). Resolves whether it changed.
   */
  async setLocalAddress(addr) {
    if (addr !== null && typeof addr !== 'string') throw typeError('addr must be an IP address string or null');
    return this._native.setLocalAddress(addr === null ? undefined : addr);
  }

  /** Checks our address towards the server now (also done before renewals); resolves whether it changed. */
  async refreshInternalAddress() {
    return this._native.refreshInternalAddress();
  }

  /** The server's last reported epoch, or null. */
  get serverEpoch() {
    return this._native.serverEpoch();
  }

  /** Whether the client listens for unsolicited ANNOUNCE. */
  get listensForAnnounce() {
    return this._native.listensForAnnounce();
  }

  /** The mappings this client holds (current snapshots). */
  mappings() {
    return this._native.mappings().map((d) => this._mapping(d));
  }

  // The Mapping for `d`: the one handed out for it (updated), or a new one.
  _mapping(d) {
    const m = this._mappings.get(d.id);
    return m ? m._update(d) : new Mapping(this, d);
  }

  /** The MAP mapping this client holds for `internalPort` and `protocol`, or null. */
  findMapping(internalPort, protocol = 6) {
    const p = toProtocol(protocol);
    const d = this._native.findMapping(p, toNumber(internalPort, 'internalPort', true));
    return d ? this._mapping(d) : null;
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

module.exports = { discover, Mapping, Client };
