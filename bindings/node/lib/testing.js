'use strict';
// `testing.Server`: the core's PCP test server on loopback.

const native = require('./load-native');
const { callNative } = require('./errors');
const { toNumber, toAddress, checkObject } = require('./args');

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
    callNative(() => this._native.dropNext(toNumber(n, 'n', true)));
  }

  /** Delays every answer by `ms` (0 to stop). */
  setDelay(ms) {
    callNative(() => this._native.setDelay(toNumber(ms, 'delay', true)));
  }

  /**
   * Answers every MAP and PEER with the result code (a name such as
   * 'NO_RESOURCES') and error lifetime; `null` answers normally again.
   */
  forceResult(code, lifetime = 30) {
    callNative(() => this._native.forceResult(code, toNumber(lifetime, 'lifetime', true)));
  }

  /**
   * Answers MAP and PEER requests that create or renew a mapping with the
   * crafted datagrams of the named hostile case (the names of
   * tests/hostile/cases.json, e.g. 'wrong_nonce'); `null` answers normally again.
   */
  setHostile(name) {
    callNative(() => this._native.setHostile(name));
  }

  /** Loses this fraction (0 to 1) of the datagrams, each way. */
  setLoss(fraction) {
    callNative(() => this._native.setLoss(toNumber(fraction, 'fraction', true)));
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

module.exports = { Server };
