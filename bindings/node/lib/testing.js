'use strict';
// `testing.Server`: the core's PCP test server on loopback, the native class
// itself (its methods and getters are documented in index.d.ts), with the
// package's errors.

const native = require('./load-native');
const { convertErrors, fromNative } = require('./errors');
const { checkObject } = require('./args');

/**
 * The core's PCP test server on loopback, for testing applications without
 * a router: `new testing.Server()`, then `new PCPClient(server.address)`.
 */
class Server extends convertErrors(native.NativeServer) {
  /**
   * @param {object} [options] listen ("127.0.0.1:0"), externalAddress
   *   ("203.0.113.7"), minLifetime, maxLifetime, portRangeStart,
   *   portRangeEnd, allowThirdParty, initialEpoch (seconds "up" at start;
   *   a reboot restarts from 0), mode.
   */
  constructor(options) {
    const o = checkObject(options, 'options');
    try {
      super(o);
    } catch (e) {
      throw fromNative(e);
    }
  }
}

module.exports = { Server };
