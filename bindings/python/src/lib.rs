//! `pcp_rs._pcp_rs`: the PyO3 extension module behind the `pcp_rs` Python
//! package.
//!
//! It only converts: Python arguments to `pcp-core` specs (with `ValueError`
//! / `TypeError` for bad ones), `pcp-core` results to Python objects, and
//! `pcp_core::Error` to the exception classes of `pcp_rs.errors` (chosen by
//! [`pcp_core::Error::code`]). The protocol is entirely the core's.
//!
//! Threading rules kept throughout:
//! - every wait on the network (and every DNS look-up) happens with the GIL
//!   released (`Python::detach`), in slices of `SLICE` with
//!   `check_signals` between them, so other Python threads run and Ctrl-C
//!   interrupts within a slice;
//! - Python code called from the core attaches with `Python::try_attach`
//!   (so it never blocks an exiting interpreter): event callbacks run on the
//!   client's driver thread; request completions run on whichever thread
//!   drives the engine, the driver thread or a caller blocked in a call of the
//!   same client (which holds the GIL released and no lock of the binding);
//! - no lock of the binding is held while Python code runs or while a thread
//!   waits, so a thread holding the GIL never waits for one that wants it;
//! - anything that joins the driver thread (closing a client) runs with the
//!   GIL released, since the driver may be waiting for the GIL to call back.

use std::cell::Cell;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyModule, PyString, PyTuple};

use pcp_core::client::parse_server;
use pcp_core::discovery::DiscoveryConfig;
use pcp_core::server::{Server as CoreServer, ServerConfig, ServerMode};
use pcp_core::HandlerId;
use pcp_core::{
    Client as CoreClient, ClientConfig, Error as CoreError, ErrorCode, Event as CoreEvent, Filter, MapSpec,
    Mapping as CoreMapping, MappingInfo, Nonce, Pending, Protocol, ResultCode,
};

/// How long one GIL-free wait lasts before signals are checked.
const SLICE: Duration = Duration::from_millis(50);

mod client;
mod convert;
mod events;
mod lookup;
mod mapping;
mod request;
mod server;

use client::*;
use convert::*;
use events::*;
use lookup::*;
use mapping::*;
use request::*;
use server::*;

// -------------------------------------------------------------- module --

#[pymodule]
fn _pcp_rs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyClient>()?;
    m.add_class::<PyMapping>()?;
    m.add_class::<PyEvent>()?;
    m.add_class::<PyEventIterator>()?;
    m.add_class::<PyRequest>()?;
    m.add_class::<PyDiscovered>()?;
    m.add_class::<PyServer>()?;
    m.add_function(wrap_pyfunction!(discover, m)?)?;
    m.add_function(wrap_pyfunction!(py_parse_server, m)?)?;
    m.add_function(wrap_pyfunction!(error_codes, m)?)?;
    // Private: set as attributes, so they stay out of the module's __all__.
    m.setattr("_close_all", wrap_pyfunction!(_close_all, m)?)?;
    m.setattr("_core_error", wrap_pyfunction!(_core_error, m)?)?;
    m.setattr("_wait", wrap_pyfunction!(_wait, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
