//! Integration tests of the REST API: the real router served on a loopback port, driven with
//! reqwest, over a real SQLite repository and a real CSV connector in a temp project folder.
#![allow(clippy::unwrap_used)] // tests may unwrap (PREAMBLE), harness helpers included

mod harness;

mod auth;
mod config;
mod console;
mod errors;
mod extend;
mod managed;
mod metrics;
mod queries;
mod queue;
mod recon_wait;
mod reference;
mod relationships;
mod system;
