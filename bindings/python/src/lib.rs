//! Python binding (placeholder)
