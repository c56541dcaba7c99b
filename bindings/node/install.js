#!/usr/bin/env node
'use strict';
// The package's install script: use the prebuilt addon for this platform
// when one is installed (the optional dependency pcp-rs-<platform>),
// otherwise compile the addon from the Rust sources in this package.
//
//   node install.js                 prebuilt if installed, else from source (release)
//   node install.js --from-source   always from source; add --debug for a debug build
//   PCP_RS_BUILD_FROM_SOURCE=1      same as --from-source
//   node install.js --check-packable   (npm's prepack) fails unless this copy carries its own
//                                      Cargo workspace: scripts/package.sh stages one
//
// The build is a plain `cargo build` of the pcp-rs-node crate; its cdylib is
// copied to pcp-rs.node, where loader.js looks first. It needs only cargo
// (no npm tool): the sources in a packed tarball carry their own Cargo
// workspace with pcp-core, and in the repository the crate is a member of
// the repository's workspace. Honours CARGO_TARGET_DIR and CARGO_BUILD_JOBS.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { platformTag, prebuiltPackage, BINARY_NAME } = require('./loader.js');

const here = __dirname;
const args = process.argv.slice(2);
const fromSource = args.includes('--from-source') || ['1', 'true'].includes(process.env.PCP_RS_BUILD_FROM_SOURCE);
const debug = args.includes('--debug');

function fail(message) {
  console.error(`pcp-rs install: ${message}`);
  process.exit(1);
}

function cargoCommand() {
  const cargo = process.env.CARGO || 'cargo';
  const probe = spawnSync(cargo, ['--version'], { encoding: 'utf8' });
  return probe.status === 0 ? cargo : null;
}

/** Builds the cdylib and returns its path, from cargo's own report of the artifact. */
function cargoBuild(cargo) {
  const buildArgs = ['build', '--lib', '--message-format=json-render-diagnostics', '--manifest-path',
    path.join(here, 'Cargo.toml')];
  if (!debug) buildArgs.push('--release');
  const run = spawnSync(cargo, buildArgs, { cwd: here, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024 });
  if (run.error) fail(`could not run ${cargo}: ${run.error.message}`);
  if (run.status !== 0) fail(`cargo build failed (exit status ${run.status})`);
  let artifact = null;
  for (const line of run.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const msg = JSON.parse(line);
    if (msg.reason === 'compiler-artifact' && msg.target.kind.includes('cdylib')) {
      artifact = msg.filenames.find((f) => /\.(so|dylib|dll)$/.test(f)) || artifact;
    }
  }
  if (!artifact) fail('cargo build reported no cdylib for pcp-rs-node');
  return artifact;
}

/** A tarball of this folder must build outside the repository: only package.sh's staged copy does. */
function checkPackable() {
  const manifest = fs.readFileSync(path.join(here, 'Cargo.toml'), 'utf8');
  if (!/^\[workspace\]/m.test(manifest) || !fs.existsSync(path.join(here, 'crates', 'pcp-core', 'Cargo.toml'))) {
    fail('this folder is a member of the repository\'s Cargo workspace, so its tarball would not build ' +
      'elsewhere: make the npm tarballs with scripts/package.sh (it stages a self-contained copy)');
  }
}

function main() {
  if (args.includes('--check-packable')) return checkPackable();
  if (!fromSource) {
    const prebuilt = prebuiltPackage();
    if (prebuilt) {
      console.log(`pcp-rs: using the prebuilt addon ${prebuilt.name}`);
      return;
    }
  }
  if (!fs.existsSync(path.join(here, 'Cargo.toml'))) {
    fail(`no prebuilt addon for ${platformTag()} is installed and this copy of the package has no Rust sources`);
  }
  const cargo = cargoCommand();
  if (!cargo) {
    fail(
      `no prebuilt addon for ${platformTag()} is installed (the optional dependency ` +
        `${BINARY_NAME}-${platformTag()}), and building from source needs a Rust toolchain: ` +
        'install Rust (https://rustup.rs), make sure `cargo` is on PATH, and reinstall pcp-rs.',
    );
  }
  console.log(`pcp-rs: compiling the addon from source with ${cargo} (${debug ? 'debug' : 'release'})`);
  const artifact = cargoBuild(cargo);
  const dest = path.join(here, `${BINARY_NAME}.node`);
  // Copy to a temporary name first: a half-written addon must never be loadable.
  fs.copyFileSync(artifact, `${dest}.tmp`);
  fs.renameSync(`${dest}.tmp`, dest);
  console.log(`pcp-rs: built ${dest}`);
  // An installed tarball builds in its own target/ (hundreds of MB): only the addon is kept.
  // In the repository the workspace's target/ is elsewhere and stays.
  const ownTarget = path.join(here, 'target');
  if (!process.env.CARGO_TARGET_DIR && artifact.startsWith(ownTarget + path.sep)) {
    fs.rmSync(ownTarget, { recursive: true, force: true });
  }
}

main();
