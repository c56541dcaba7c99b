//! The C ABI of pcp-rs: `libpcp_rs.so` / `libpcp_rs.a`, described by the
//! generated `include/pcp.h`.
//!
//! This crate only converts types and errors; every protocol decision is
//! made by `pcp-core`. Every exported function:
//! - starts with `pcp_`;
//! - runs inside `catch_unwind`, so no Rust panic crosses into C (it becomes
//!   `PCP_PANIC`);
//! - checks its pointer arguments for NULL (`PCP_INVALID_ARGUMENT`);
//! - writes its out-parameters only when it returns `PCP_OK`;
//! - records a detailed message for `pcp_last_error()` when it fails.
#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

mod client;
mod common;
mod config;
mod endpoint;
mod event;
mod request;
mod status;
mod testserver;

pub use client::*;
pub use common::*;
pub use config::*;
pub use endpoint::*;
pub use event::*;
pub use request::*;
pub use status::*;
pub use testserver::*;
