//! portal-migrate copies an ArcGIS portal's users, groups, folders, items, sharing and item
//! relationships into another portal, durably: every unit of work is a row in a SQLite queue,
//! so a run can be killed at any instant and resumed without duplicating anything.
//!
//! Modules, each with one job:
//! - [`settings`]: raw TOML + environment validated once into typed [`settings::Settings`].
//! - [`engine`]: the shared [`engine::Context`] and [`engine::run`], the library entry point.
//! - [`portal`]: the only code that speaks HTTP to a portal (tokens, paging, errors, files).
//! - [`store`]: the only code that speaks SQL (queue, dependencies, id map, runs, events).
//! - [`plan`]: discovery of the source, itself made of resumable tasks.
//! - [`work`]: the worker pool: claiming, retries with backoff, graceful shutdown.
//! - [`clone`]: one module per task kind: look up what exists, create or adopt, record.
//! - [`commands`]: `status`, `retry`, `plan` as functions returning printable values.
//! - [`service`]: the long-running mode: sync rounds, HTTP endpoints, pause, reload.
//! - [`verify`]: compares the target with the source through the id map, object by object.
//! - [`report`]: what a migration did, per kind, as Markdown, JSON or HTML.
//! - [`demo`]: two simulated portals and a full migration of the sample organisation.
//! - [`bench`]: the performance figures (`portal-migrate bench`) against simulated portals.
//! - [`sim`]: a portal simulator speaking the sharing REST API on loopback, with faults.
//! - [`fixture`]: the JSON format the simulator loads and dumps.
//! - [`class`]: the transient / permanent / fatal classification of every failure.
//! - [`secret`]: a string type for passwords and tokens that never prints its value.
//! - [`logging`]: tracing setup (human or JSON lines).

pub mod bench;
pub mod class;
pub mod clone;
pub mod commands;
pub mod demo;
pub mod engine;
pub mod fixture;
pub mod logging;
pub mod plan;
pub mod portal;
pub mod report;
pub mod secret;
pub mod service;
pub mod settings;
pub mod sim;
pub mod store;
pub mod verify;
pub mod work;
