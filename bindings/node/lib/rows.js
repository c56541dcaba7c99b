'use strict';
// The native side's messages and mapping rows, given their names again.

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

module.exports = { message, ROW_ID, ROW_EXTERNAL_ADDRESS, ROW_EXTERNAL_PORT, ROW_LIFETIME };
