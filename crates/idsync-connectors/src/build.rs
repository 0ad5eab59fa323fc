//! `build_connector`: the one place that turns a provisioner config into a running connector,
//! with the one `match` over the connector kinds
//! (docs/configuration.md#confprovisioneropenicf-namejson). Building opens nothing: pools and files
//! are opened by the first operation (or `Connector::test`).

use crate::contract::{Connector, ConnectorError, ConnectorResult};
use crate::csv::CsvConnector;
use crate::sql::SqlConnector;
use idsync_config::{ConnectorConfig, ConnectorKind};
use std::path::Path;
use std::sync::Arc;

/// Builds the connector a `provisioner.openicf-*.json` describes. Relative paths in it
/// (`csvFile`, an SQLite file) are relative to `project_dir`.
pub fn build_connector(
    config: &ConnectorConfig,
    project_dir: &Path,
) -> ConnectorResult<Arc<dyn Connector>> {
    if !config.enabled {
        return Err(ConnectorError::Config(format!(
            "connector {} is disabled",
            config.name
        )));
    }
    let object_types = config.raw.get("objectTypes");
    let props = &config.configuration_properties;
    Ok(match config.kind {
        ConnectorKind::Csv => Arc::new(CsvConnector::new(
            &config.name,
            props,
            object_types,
            project_dir,
        )?),
        ConnectorKind::DatabaseTable => Arc::new(SqlConnector::new(
            &config.name,
            props,
            object_types,
            project_dir,
        )?),
        // LDAP arm (owned by the LDAP connector's author): built from the provisioner JSON.
        ConnectorKind::Ldap => Arc::new(crate::ldap::LdapConnector::from_provisioner(
            &config.name,
            &config.raw,
        )?),
    })
}
