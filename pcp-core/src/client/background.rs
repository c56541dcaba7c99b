//! The calls that take a while without a request of their own (discovery,
//! closing) as [`Pending`]s, so that no shell has to run a thread for them:
//! an event loop (Node, asyncio) or a waiter that checks for Ctrl-C (Python)
//! gets the same handle as for a request.
//!
//! Each runs on a short-lived thread of its own, bounded by its deadline
//! (discovery's, the close timeout); cancelling the `Pending` abandons the
//! result, not the work.

use std::net::SocketAddr;

use super::pending::pending;
use super::{Client, ClientConfig, Pending};
use crate::discovery::{self, Discovered, DiscoveryConfig};
use crate::{Error, Result};

/// Runs `f` on its own thread; its result completes the returned `Pending`.
fn in_background<T: Send + 'static>(name: &str, f: impl FnOnce() -> Result<T> + Send + 'static) -> Pending<T> {
    let (p, c) = pending();
    match std::thread::Builder::new().name(name.into()).spawn(move || c.complete(f())) {
        Ok(_) => p,
        Err(e) => Pending::ready(Err(Error::from(e))),
    }
}

/// [`discovery::discover`] without blocking the caller.
pub fn discover_async(config: DiscoveryConfig) -> Pending<Discovered> {
    in_background("pcp-discover", move || discovery::discover(&config))
}

impl Client {
    /// [`Client::discover_with`] without blocking the caller.
    pub fn discover_async(
        discovery: DiscoveryConfig,
        config: impl FnOnce(SocketAddr) -> ClientConfig + Send + 'static,
    ) -> Pending<Client> {
        in_background("pcp-discover", move || Client::discover_with(&discovery, config))
    }

    /// Closes without blocking the caller: completes once the client is
    /// closed (its deletes answered or the close timeout passed). `keep`
    /// leaves the mappings on the server, as [`Client::close_keep`].
    pub fn close_async(&self, keep: bool) -> Pending<()> {
        let client = self.clone();
        in_background("pcp-close", move || {
            if keep {
                client.close_keep();
            } else {
                client.close();
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Server;

    #[test]
    fn discovery_and_close_as_pendings() {
        let server = Server::start_local().expect("server");
        let found = discover_async(DiscoveryConfig::with_candidates(vec![server.local_addr()])).wait().expect("found");
        assert_eq!(found.server, server.local_addr());
        let dc = DiscoveryConfig::with_candidates(vec![server.local_addr()]);
        let client = Client::discover_async(dc, |addr| {
            let mut cc = ClientConfig::new(addr);
            cc.listen_announce = false;
            cc
        })
        .wait()
        .expect("client");
        client.map(crate::Protocol::TCP, 8080).expect("map");
        client.close_async(false).wait().expect("closed");
        assert!(client.is_closed());
        assert_eq!(server.mapping_count(), 0);
    }
}
