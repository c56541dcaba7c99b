'use strict';
// The native side's messages and mapping rows, given their names again.
//
// The native side calls back with a message's fields as arguments, and
// returns mappings as arrays: both are much cheaper for it than building
// objects with named keys. Their layout is defined once, in Rust
// (`layout!` in src/message.rs); the functions that name the values are
// generated from it here, when the package loads, so the two sides cannot
// drift and V8 compiles them like hand-written ones.

const native = require('./load-native');

const { row: ROW_FIELDS, args: ARG_FIELDS } = native.rowLayout();

const arg = (i) => `a${i}`;
const slot = (name) => {
  const i = ARG_FIELDS.indexOf(name);
  if (i < 0) throw new Error(`pcp-rs: the native message layout has no ${name}`);
  return arg(i);
};

/**
 * A message from the native side (a request's result or an event), from
 * the callback's arguments: `{ kind, req, code, message, mapping, id, epoch,
 * address, oldAddress, server }`, `mapping` a row (or undefined).
 */
// eslint-disable-next-line no-new-func
const message = new Function(
  ...ARG_FIELDS.map((_, i) => arg(i)),
  `return {
    ${ARG_FIELDS.filter((f) => !f.startsWith('mapping.')).map((f) => `${f}: ${slot(f)}`).join(',\n    ')},
    mapping: ${slot('mapping.id')} === undefined ? undefined
      : [${ROW_FIELDS.map((f) => slot(`mapping.${f}`)).join(', ')}],
  };`,
);

// How a Mapping takes each row field (the default: as it is).
const TAKE = {
  remoteAddress: (v) => `${v} === undefined ? null : ${v}`,
  remotePort: (v) => `${v} === undefined ? null : ${v}`,
  // The core's times (ms since 1970): the same until a renewal moves them.
  grantedAt: (v) => `new Date(${v})`,
};
const PROPERTY = { expiresAt: '_expiresAt' };

/** Sets the fields of Mapping `m` from row `d`. */
// eslint-disable-next-line no-new-func
const updateMapping = new Function(
  'm',
  'd',
  ROW_FIELDS.map((f, i) => `m.${PROPERTY[f] || f} = ${(TAKE[f] || ((v) => v))(`d[${i}]`)};`).join('\n'),
);

const ROW = Object.fromEntries(ROW_FIELDS.map((f, i) => [f, i]));

module.exports = { message, updateMapping, ROW };
