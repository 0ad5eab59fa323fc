#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! End-to-end tests of the `idsync` binary: they copy a project to a temp dir, run the real
//! binary and look at what a user sees (exit codes, summary JSON, files, stored objects).

mod browser;
mod private_pg;
mod server;
#[path = "../../../idsync-connectors/tests/support/slapd.rs"]
mod slapd;
#[allow(dead_code)]
#[path = "../../src/splitmix.rs"]
mod splitmix;
mod support;

mod auth_cli;
mod chaos;
mod cluster;
mod config_validate;
mod connector_test;
mod console;
mod idm_historical_accounts;
mod idm_layout;
mod idm_multiaccount;
mod idm_scripts_sample;
mod queue_cli;
mod recon_cli;
mod recon_getting_started;
mod recon_hooks;
mod recon_managed;
mod recon_situations;
mod sample2c;
mod scripts_api;
mod serve;
mod serve_cookies;
mod serve_files;
mod serve_hostile;
mod serve_ldap;
mod serve_livesync;
mod serve_livesync_ldap;
mod serve_managed;
mod serve_managed_scripts;
mod serve_queue;
mod serve_runs;
mod serve_scheduler;
mod serve_secrets;
mod serve_security;
