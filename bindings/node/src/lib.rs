//! Node binding (placeholder)
