//! Where `pcp map` records each mapping's nonce so that a later
//! `pcp delete` can prove ownership: servers refuse a delete with another
//! nonce. One line per mapping: `gateway protocol internal_port nonce`,
//! then the third party's address for a mapping made with `--third-party`
//! (its delete must name it again; RFC 6887 section 13.1). A line without
//! it is a mapping of this host.
//!
//! `pcp map` appends its line (one small write, no fsync, no rewrite:
//! a one-shot command must not pay for flushing a file, which took longer
//! than the MAP itself); the last line for a mapping wins. `pcp delete`
//! rewrites the file without the mapping's lines, which also drops the
//! lines older ones left. A crash right after `pcp map` may lose its line:
//! the mapping then runs out at the end of its lifetime instead.

use std::fs;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use pcp_core::{Error, Mapping, Nonce, Protocol};

pub struct Record {
    pub nonce: Nonce,
}

/// `$XDG_STATE_HOME/pcp-rs/mappings`, else `~/.local/state/pcp-rs/mappings`
/// (on Windows `%LOCALAPPDATA%\pcp-rs\mappings`).
fn path() -> Result<PathBuf, Error> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let base = match var("XDG_STATE_HOME") {
        Some(d) => PathBuf::from(d),
        None if cfg!(windows) && var("LOCALAPPDATA").is_some() => PathBuf::from(var("LOCALAPPDATA").expect("set")),
        None => {
            let home =
                var("HOME").ok_or_else(|| Error::InvalidArgument("neither XDG_STATE_HOME nor HOME is set".into()))?;
            PathBuf::from(home).join(".local/state")
        }
    };
    Ok(base.join("pcp-rs").join("mappings"))
}

fn key(gateway: SocketAddr, protocol: Protocol, port: u16) -> String {
    format!("{gateway} {} {port}", protocol.0)
}

fn lines() -> Result<Vec<String>, Error> {
    match fs::read_to_string(path()?) {
        Ok(s) => Ok(s.lines().map(str::to_owned).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

fn write(lines: &[String]) -> Result<(), Error> {
    let p = path()?;
    fs::create_dir_all(p.parent().expect("has a parent"))?;
    let tmp = p.with_extension("tmp");
    let mut f = fs::File::create(&tmp)?;
    for l in lines {
        writeln!(f, "{l}")?;
    }
    f.sync_all()?;
    fs::rename(tmp, p)?;
    Ok(())
}

pub fn record(gateway: SocketAddr, m: &Mapping, third_party: Option<IpAddr>) -> Result<(), Error> {
    let p = path()?;
    fs::create_dir_all(p.parent().expect("has a parent"))?;
    let whose = third_party.map(|t| format!(" {t}")).unwrap_or_default();
    let line = format!("{} {}{whose}\n", key(gateway, m.protocol(), m.internal_port()), m.nonce().to_hex());
    // One write of one short line in append mode: lines of concurrent
    // `pcp map`s do not interleave.
    fs::OpenOptions::new().create(true).append(true).open(p)?.write_all(line.as_bytes())?;
    Ok(())
}

/// The nonce of a line for this mapping (of `third_party`, or of this host
/// when None).
fn nonce_of(line: &str, prefix: &str, third_party: Option<IpAddr>) -> Option<Nonce> {
    let mut rest = line.strip_prefix(prefix)?.split(' ');
    let nonce = Nonce::from_hex(rest.next()?)?;
    let whose = match rest.next() {
        Some(t) => Some(t.parse::<IpAddr>().ok()?),
        None => None,
    };
    (whose == third_party).then_some(nonce)
}

pub fn find(
    gateway: SocketAddr,
    protocol: Protocol,
    port: u16,
    third_party: Option<IpAddr>,
) -> Result<Option<Record>, Error> {
    let prefix = format!("{} ", key(gateway, protocol, port));
    // The last line wins: a later `pcp map` of the same port appended it.
    Ok(lines()?.iter().rev().find_map(|l| nonce_of(l, &prefix, third_party)).map(|nonce| Record { nonce }))
}

pub fn remove(gateway: SocketAddr, protocol: Protocol, port: u16, third_party: Option<IpAddr>) -> Result<(), Error> {
    let prefix = format!("{} ", key(gateway, protocol, port));
    let rest: Vec<String> = lines()?.into_iter().filter(|l| nonce_of(l, &prefix, third_party).is_none()).collect();
    write(&rest)
}
