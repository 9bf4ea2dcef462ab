//! The portal simulator: query language and synthetic organisations (the server lives beside them).
pub mod query;
