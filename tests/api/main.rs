//! Integration tests: the real server on a free loopback port, called
//! through the generated gRPC clients (and, in `python.rs`, through Python
//! grpcio stubs generated from `proto/`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agreements;
mod alerts;
mod audit;
mod backups;
mod buf;
mod consents;
mod console;
mod credentials;
mod deploy;
mod discovery;
mod duplicates;
mod emergency;
mod events;
mod faults;
mod helpers;
mod identity;
mod limits;
mod matching;
mod merges;
mod metrics;
mod own_postgres;
mod paging;
mod proofs;
mod python;
mod records;
mod reload;
mod reviews;
mod seals;
mod server;
mod sharing;
mod subjects;
mod traces;
mod views;
