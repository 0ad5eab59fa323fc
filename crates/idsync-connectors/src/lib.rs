//! Connectors: the object-set contract and its implementations for CSV files, database tables
//! and LDAP directories. One `build_connector` turns a provisioner config into a connector.
//!
//! Drivers (csv, sqlx, ldap3) stay inside this crate; nothing here knows about recon or sync.
//! The managed-object sets (repository-backed) are built by the integrator, not here.

mod build;
pub mod contract;
pub mod csv;
pub mod ldap;
pub mod paging;
pub mod schema;
pub mod sql;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;

pub use build::build_connector;
pub use contract::{Change, ChangeBatch, Connector, ConnectorError, ConnectorResult, ObjectSet};
