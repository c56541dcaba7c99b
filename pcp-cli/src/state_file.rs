//! Where `pcp map` records each mapping's nonce so that a later
//! `pcp delete` can prove ownership: servers refuse a delete with another
//! nonce. One line per mapping: `gateway protocol internal_port nonce`.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use pcp_core::{Error, Mapping, Nonce, Protocol};

pub struct Record {
    pub nonce: Nonce,
}

/// `$XDG_STATE_HOME/pcp-rs/mappings` or `~/.local/state/pcp-rs/mappings`.
fn path() -> Result<PathBuf, Error> {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => {
            let home = std::env::var_os("HOME")
                .ok_or_else(|| Error::InvalidArgument("neither XDG_STATE_HOME nor HOME is set".into()))?;
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

pub fn record(gateway: SocketAddr, m: &Mapping) -> Result<(), Error> {
    let k = key(gateway, m.protocol(), m.internal_port());
    let mut all: Vec<String> = lines()?.into_iter().filter(|l| !l.starts_with(&format!("{k} "))).collect();
    all.push(format!("{k} {}", m.nonce().to_hex()));
    write(&all)
}

pub fn find(gateway: SocketAddr, protocol: Protocol, port: u16) -> Result<Option<Record>, Error> {
    let prefix = format!("{} ", key(gateway, protocol, port));
    Ok(lines()?.iter().find_map(|l| l.strip_prefix(&prefix).and_then(Nonce::from_hex)).map(|nonce| Record { nonce }))
}

pub fn remove(gateway: SocketAddr, protocol: Protocol, port: u16) -> Result<(), Error> {
    let prefix = format!("{} ", key(gateway, protocol, port));
    let rest: Vec<String> = lines()?.into_iter().filter(|l| !l.starts_with(&prefix)).collect();
    write(&rest)
}
