'use strict';
// `PCPClient`: the classic API (its rules are the core's `Client::map_port`).

const { toNumber, toProtocol, checkObject, requestOptions } = require('./args');
const { Client } = require('./client');

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
    const discovering = serverIP === undefined || serverIP === null;
    this._ready = discovering ? Client.discover(o) : Promise.resolve(new Client(serverIP, o));
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

  /**
   * Maps TCP (6) or UDP (17) `internalPort` for `lifetime` seconds (default:
   * the core's, 3600); resolves `{ externalIP, externalPort, lifetime }`.
   */
  createMapping(internalPort, externalPort = 0, protocol = 6, lifetime) {
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
    const port = toNumber(internalPort, 'internalPort', true);
    await c._request((req) => c._native.deletePort(req, p, port), () => c._forget(undefined), undefined);
  }

  /**
   * Asks for a PEER mapping towards `peerIP:peerPort`; resolves `{ externalIP,
   * externalPort, lifetime, internalPort, protocol, peerIP, peerPort }`.
   * Asking again for the same peer refreshes its mapping (the core's
   * `Client::peer_port`), as `createMapping` does.
   */
  async createPeerMapping(internalPort, peerIP, peerPort, protocol = 6, lifetime) {
    const c = this._client || (await this._ready);
    const o = requestOptions({ internalPort, remoteAddress: peerIP, remotePort: peerPort, protocol, lifetime });
    const m = await c._request((req) => c._native.peerPort(req, o), (msg) => c._track(msg), undefined);
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

module.exports = { PCPClient };
