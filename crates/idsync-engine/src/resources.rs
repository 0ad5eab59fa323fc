//! Resolving resource paths to object sets: `system/<name>/<type>` through the configured
//! connectors (metered: call latency and errors per connector, see [`crate::metered`]),
//! `managed/<type>` through the repository.

use crate::error::{EngineError, EngineResult};
use crate::managed_set::ManagedObjectSet;
use crate::metered::MeteredObjectSet;
use idsync_config::Project;
use idsync_connectors::{Connector, ObjectSet};
use idsync_core::ResourcePath;
use idsync_repo::Repository;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Resources {
    repo: Arc<dyn Repository>,
    connectors: BTreeMap<String, Arc<dyn Connector>>,
    managed_types: Vec<String>,
}

impl Resources {
    pub fn new(
        project: &Project,
        repo: Arc<dyn Repository>,
        connectors: BTreeMap<String, Arc<dyn Connector>>,
    ) -> Self {
        let managed_types = project.managed.iter().map(|m| m.name.clone()).collect();
        Self {
            repo,
            connectors,
            managed_types,
        }
    }

    pub fn connector(&self, name: &str) -> EngineResult<&Arc<dyn Connector>> {
        self.connectors.get(name).ok_or_else(|| {
            EngineError::NotFound(format!("no connector \"{name}\" is configured and enabled"))
        })
    }

    pub fn connectors(&self) -> impl Iterator<Item = (&String, &Arc<dyn Connector>)> {
        self.connectors.iter()
    }

    /// The object set of a collection path (an id in the path is ignored).
    pub fn object_set(&self, path: &ResourcePath) -> EngineResult<Arc<dyn ObjectSet>> {
        match path {
            ResourcePath::Managed { object_type, .. } => {
                if !self.managed_types.iter().any(|t| t == object_type) {
                    return Err(EngineError::NotFound(format!(
                        "no managed object type \"{object_type}\" in managed.json"
                    )));
                }
                Ok(Arc::new(ManagedObjectSet::new(
                    self.repo.clone(),
                    object_type.clone(),
                )))
            }
            ResourcePath::System {
                connector,
                object_type,
                ..
            } => {
                let inner = self.connector(connector)?.object_set(object_type)?;
                Ok(Arc::new(MeteredObjectSet::new(connector, inner)))
            }
            ResourcePath::Link { .. } => Err(EngineError::BadRequest(
                "repo/link is not a mapping source or target".into(),
            )),
        }
    }
}

/// The managed object type of a path, when it is `managed/<type>`.
pub fn managed_type(path: &ResourcePath) -> Option<&str> {
    match path {
        ResourcePath::Managed { object_type, .. } => Some(object_type),
        ResourcePath::System { .. } | ResourcePath::Link { .. } => None,
    }
}
