//! The explicit `/sync` actions (docs/rest.md#synchronization): `performAction` (an action without
//! assessment) and `getLinkedResources` (the objects linked to one object, over every
//! link-defining mapping that touches its collection).

use super::SyncOutcome;
use crate::Engine;
use crate::error::{EngineError, EngineResult};
use crate::links::LinkView;
use crate::pipeline::explicit::ExplicitAction;
use crate::pipeline::op::ChunkOutput;
use idsync_core::ResourcePath;
use serde_json::{Value, json};

impl Engine {
    /// Runs `req` on `mapping` and commits its link and managed-object writes with the sync
    /// audit entry.
    pub async fn perform_action(
        &self,
        mapping: &str,
        req: &ExplicitAction,
    ) -> EngineResult<SyncOutcome> {
        let ctx = self.sync_ctx(mapping)?;
        if req.source_id.is_none() && req.target_id.is_none() {
            return Err(EngineError::BadRequest(
                "performAction needs sourceId or targetId".into(),
            ));
        }
        let mut out = ChunkOutput::default();
        ctx.perform(self, req, &mut out).await;
        Ok(self.commit_output(out).await.0)
    }

    /// `getLinkedResources&resourceName=<collection>/<id>`: one entry per link of the object,
    /// `{resourceName, content, linkQualifier, linkType, mappings:[{name,type}]}`; a linked
    /// object that cannot be read has `content: null` and an `error`.
    pub async fn linked_resources(&self, resource_name: &str) -> EngineResult<Vec<Value>> {
        let path = ResourcePath::parse(resource_name)
            .map_err(|e| EngineError::BadRequest(format!("resourceName: {e}")))?;
        let id = path.id().map(str::to_string).ok_or_else(|| {
            EngineError::BadRequest(format!("resourceName {resource_name} has no object id"))
        })?;
        let collection = path.collection().to_string();
        let mut out = Vec::new();
        for definer in self.project.mappings.iter().filter(|m| m.links.is_none()) {
            let as_source = definer.source_str == collection;
            let as_target = definer.target_str == collection;
            if !as_source && !as_target {
                continue;
            }
            let view = LinkView::of(&self.project, definer);
            let (_, compiled) = self.mapping(&definer.name)?;
            let users: Vec<Value> = self
                .project
                .mappings
                .iter()
                .filter(|m| {
                    m.name == definer.name
                        || m.links.as_ref().is_some_and(|l| l.mapping == definer.name)
                })
                .map(|m| {
                    let kind = if m.source_str == collection {
                        "source"
                    } else {
                        "target"
                    };
                    json!({ "name": m.name, "type": kind })
                })
                .collect();
            for q in compiled.link_qualifiers(None, None, true)? {
                let (link, other_collection) = if as_source {
                    (view.by_source(&self.repo, &q, &id).await?, &definer.target)
                } else {
                    (view.by_target(&self.repo, &q, &id).await?, &definer.source)
                };
                let Some(link) = link else { continue };
                let other_id = if as_source {
                    view.target_id(&link)
                } else {
                    view.source_id(&link)
                };
                let mut entry = json!({
                    "resourceName": format!("{}/{other_id}", other_collection.collection()),
                    "content": Value::Null,
                    "linkQualifier": q,
                    "linkType": definer.name,
                    "mappings": users,
                });
                let read = match self.resources.object_set(other_collection) {
                    Ok(set) => set.get(other_id).await.map_err(EngineError::from),
                    Err(e) => Err(e),
                };
                match read {
                    Ok(v) => entry["content"] = v.unwrap_or(Value::Null),
                    Err(e) => entry["error"] = json!(e.to_string()),
                }
                out.push(entry);
            }
        }
        Ok(out)
    }
}
