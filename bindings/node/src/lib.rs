//! The native half of the `pcp-rs` npm package.
//!
//! This crate only converts types and errors between `pcp-core` and
//! JavaScript; `index.js` builds the public API (Promises, EventEmitter,
//! AbortSignal, `Error` objects with a `code`) on top of it.
//!
//! How results reach JavaScript without blocking anything:
//! - every request is a `pcp_core::Pending` whose result is handed to a
//!   callback where the answer is processed (`requests.rs`);
//! - answers are read on the JavaScript thread: a libuv poll handle watches
//!   the client's socket and calls `Client::process_ready` (see `reader.rs`),
//!   so a result is handed to the JavaScript callback directly, with no
//!   thread hop (this is what makes sequential round trips fast);
//! - results completed on the core's driver thread (timeouts, and every
//!   answer if the poll handle could not be set up) and events (`renewed`,
//!   `lost`, ...) are queued, with the request number the JavaScript side
//!   chose, on the client's one threadsafe function. Events are produced
//!   after the answer that caused them is processed, so a result still
//!   reaches JavaScript before the events that follow it.
//!
//! No thread waits: neither the JavaScript thread nor libuv's pool. The
//! threadsafe function starts unreferenced; `index.js` references it while a
//! request is in flight or renewals run (unless the user called `unref()`).
//! The poll handle is always unreferenced, so only that decides.

#![deny(clippy::all)]

pub mod client;
pub mod convert;
pub mod message;
mod reader;
pub mod requests;
pub mod server;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::bindgen_prelude::{Either, Function, JsValue, JsValuesTupleIntoVec, Status, ToNapiValue, Unknown};
use napi::sys;
use napi::Env;
type Result<T, E = PcpError> = std::result::Result<T, E>;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use pcp_core::client::{parse_server, wall_clock, Canceller};
use pcp_core::discovery::DiscoveryConfig;
use pcp_core::server::{Server, ServerConfig, ServerMode};
use pcp_core::{
    Client, ClientConfig, Error as PcpError, ErrorCode, Event, Filter, HandlerId, MapSpec, Mapping, MappingId,
    MappingInfo, Nonce, PeerSpec, Pending, Protocol,
};

use convert::*;
use message::*;
use requests::*;
