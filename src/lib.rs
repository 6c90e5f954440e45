//! Accord: consented, audited sharing of citizen and case records between
//! public bodies, over gRPC.
//!
//! The layers, from the wire inwards: [`api`] (gRPC adapters and the only
//! proto <-> domain conversion), [`auth`] (who is calling), [`service`]
//! (audited operations: every call ends in exactly one ledger entry),
//! [`policy`] (pure access decisions), [`domain`] (validated types),
//! [`ledger`] (entries and their Merkle tree), [`matching`] (explainable
//! person matching) and [`store`] (SQLite and PostgreSQL).
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod auth;
pub mod backup;
pub mod bounded;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod console;
#[cfg(feature = "dev")]
pub mod dev;
pub mod domain;
pub mod health;
pub mod ledger;
pub mod matching;
pub mod monitor;
pub mod peers;
pub mod policy;
pub mod report;
pub mod service;
pub mod store;
pub mod telemetry;
