//! Connectors: the object-set contract and its implementations for CSV files, database tables
//! and LDAP directories, plus the repository-backed managed-object sets. One `build_connector`
//! turns a provisioner config into a connector.
//!
//! Drivers (csv, sqlx, ldap3) stay inside this crate; nothing here knows about recon or sync.

pub mod contract;
pub mod ldap;

pub use contract::{Change, ChangeBatch, Connector, ConnectorError, ConnectorResult, ObjectSet};
