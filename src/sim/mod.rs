//! A portal simulator: one ArcGIS portal's sharing REST API served on loopback from an
//! in-memory state loaded from a [`crate::fixture::Fixture`], with injectable faults.
//!
//! Layout, one job per file:
//! - [`server`]: sockets, TLS, per-connection handling (a dropped connection must really be
//!   dropped, so connections are served by hand rather than by `axum::serve`).
//! - `dispatch`: the request pipeline: control routes, faults, auth, route resolution, stats.
//! - `routes`: path → [`routes::Route`] with the route template used for stats.
//! - `request`: query string, urlencoded and multipart bodies → one parameter map.
//! - `state`: the portal itself (users, groups, folders, items, relationships, tokens).
//! - `api/*`: the endpoint handlers, grouped as the REST API groups them.
//! - `render`: the JSON shapes of users, groups and items as real portals return them.
//! - `search`: the [`query::Document`] views of users, groups and items.
//! - [`faults`]: fault settings and the machinery that draws them.
//! - [`files`]: item files in memory, generated on the fly, or spooled to disk.
//! - [`query`], [`generate`]: the portal search syntax and synthetic org generator.
//! - [`cli`]: the `portal-migrate sim` subcommand.

pub mod cli;
pub mod faults;
pub mod files;
pub mod generate;
pub mod query;
pub mod server;
pub mod stats;

mod api;
mod dispatch;
mod error;
mod render;
mod request;
mod routes;
mod search;
mod state;

pub use faults::Faults;
pub use server::{SimError, SimOptions, SimServer, StatsHandle};
pub use stats::Stats;
