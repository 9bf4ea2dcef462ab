//! The portal simulator: query language and synthetic organisations (the server lives beside them).
pub mod generate;
pub mod query;
