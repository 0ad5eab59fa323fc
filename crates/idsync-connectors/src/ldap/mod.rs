//! The LDAP connector (ICF `org.identityconnectors.ldap.LdapConnector`): a bounded pool of
//! ldap3 connections with simple bind (LDAPS or StartTLS when configured), CREST filters
//! translated to LDAP filters, paged reads behind opaque cookies, CRUD with modDN renames.
//!
//! It owns only the LDAP protocol side; it knows nothing about mappings, recon or sync, and
//! never filters in memory what the directory can filter.

pub mod config;
mod dn;
pub mod entry;
pub mod error;
pub mod filter;
mod groups;
pub mod livesync;
mod object_set;
pub mod paging;
pub mod pool;
mod resume;
mod sort;

pub use config::{LdapConfig, ObjectTypeDef, PropertyDef};
pub use object_set::LdapObjectSet;

use crate::contract::{Connector, ConnectorError, ConnectorResult, ObjectSet};
use async_trait::async_trait;
use ldap3::Scope;
use paging::CursorRegistry;
use pool::LdapPool;
use serde_json::Value;
use std::sync::Arc;

/// What every object set of one connector shares.
#[derive(Debug)]
struct Shared {
    pool: LdapPool,
    cursors: CursorRegistry,
}

#[derive(Debug)]
pub struct LdapConnector {
    name: String,
    shared: Arc<Shared>,
    types: Vec<Arc<ObjectTypeDef>>,
    schema: Value,
}

impl LdapConnector {
    /// Builds the connector from a provisioner config (`configurationProperties`,
    /// `objectTypes`). No connection is opened until the first operation.
    pub fn from_provisioner(name: &str, provisioner: &Value) -> ConnectorResult<Self> {
        let props = provisioner.get("configurationProperties").ok_or_else(|| {
            ConnectorError::Config("the LDAP connector needs configurationProperties".into())
        })?;
        let config = LdapConfig::from_properties(props)?;
        let object_types = provisioner.get("objectTypes");
        let types = ObjectTypeDef::parse_all(object_types)?;
        Ok(Self::new(
            name,
            config,
            types,
            object_types.cloned().unwrap_or(Value::Null),
        ))
    }

    pub fn new(name: &str, config: LdapConfig, types: Vec<ObjectTypeDef>, schema: Value) -> Self {
        let shared = Arc::new(Shared {
            pool: LdapPool::new(Arc::new(config)),
            cursors: CursorRegistry::new(),
        });
        Self {
            name: name.to_owned(),
            shared,
            types: types.into_iter().map(Arc::new).collect(),
            schema,
        }
    }

    pub fn config(&self) -> &LdapConfig {
        self.shared.pool.config()
    }

    /// Paged searches still open (each holds one connection); for diagnostics and tests.
    pub fn open_cursors(&self) -> usize {
        self.shared.cursors.open_cursors()
    }
}

#[async_trait]
impl Connector for LdapConnector {
    fn name(&self) -> &str {
        &self.name
    }

    /// A fresh connection and bind (not a pooled one, which could hide a broken bind), then a
    /// read of the root DSE.
    async fn test(&self) -> ConnectorResult<()> {
        let cfg = self.shared.pool.config();
        pool::bounded(cfg.operation_timeout, async {
            let mut ldap = pool::connect(cfg).await?;
            let res = ldap
                .with_timeout(cfg.operation_timeout)
                .search(
                    "",
                    Scope::Base,
                    "(objectClass=*)",
                    vec!["supportedControl", "namingContexts"],
                )
                .await
                .map_err(|e| error::classify(e, "root DSE"))?;
            let (entries, _) = res.success().map_err(|e| error::classify(e, "root DSE"))?;
            let _ = ldap.unbind().await;
            if entries.is_empty() {
                return Err(ConnectorError::Unavailable(
                    "the server returned no root DSE".into(),
                ));
            }
            Ok(())
        })
        .await
    }

    fn schema(&self) -> Value {
        self.schema.clone()
    }

    fn object_set(&self, object_type: &str) -> ConnectorResult<Arc<dyn ObjectSet>> {
        let ty = self
            .types
            .iter()
            .find(|t| t.answers_to(object_type))
            .ok_or_else(|| {
                ConnectorError::BadRequest(format!(
                    "connector {} has no object type {object_type:?}",
                    self.name
                ))
            })?;
        Ok(Arc::new(LdapObjectSet::new(
            self.shared.clone(),
            ty.clone(),
        )?))
    }
}
