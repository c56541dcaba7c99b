'use strict';
// index.d.ts declares every runtime export (tsc --strict on the example is
// run by run-tests.sh).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { EventEmitter } = require('node:events');
const pcp = require('..');

const dts = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');

test('every export of index.js is declared in index.d.ts', () => {
  const declared = new Set([...dts.matchAll(/^export declare (?:class|const|function) (\w+)/gm)].map((m) => m[1]));
  assert.deepEqual(Object.keys(pcp).filter((k) => !declared.has(k)), []);
  assert.deepEqual([...declared].filter((k) => !(k in pcp) && k !== 'TestServer'), []);
});

test('the declared error codes are the runtime ones', () => {
  const block = /export type ErrorCode =([^;]+);/.exec(dts)[1];
  const codes = [...block.matchAll(/'(\w+)'/g)].map((m) => m[1]);
  assert.deepEqual(codes, [...pcp.ERROR_CODES]);
});

test('public methods of the classes are declared', () => {
  const classes = { Client: pcp.Client, PCPClient: pcp.PCPClient, Mapping: pcp.Mapping, TestServer: pcp.testing.Server };
  for (const [name, cls] of Object.entries(classes)) {
    const body = new RegExp(`export declare class ${name}[^{]*\\{([\\s\\S]*?)\\n\\}`).exec(dts)[1];
    // Inherited ones too (testing.Server's are its native base class's), up to EventEmitter's.
    const keys = [];
    for (let p = cls.prototype; p !== Object.prototype && p !== EventEmitter.prototype; p = Object.getPrototypeOf(p)) {
      keys.push(...Object.getOwnPropertyNames(p));
    }
    for (const key of keys) {
      if (key === 'constructor' || key.startsWith('_')) continue;
      assert.match(body, new RegExp(`\\b${key}\\b`), `${name}.${key} is not declared`);
    }
  }
});
