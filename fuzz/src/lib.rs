//! What the fuzz targets run, as plain functions: a target is one line, and
//! a crash found by one can be replayed from a unit test or a debugger.

pub mod engine;
pub mod input;
pub mod wire;
