//! An explicit action on one source/target pair (`POST sync?_action=performAction`): the act
//! and account steps of the pipeline without its assessment, unless the caller asks for the
//! situation to be checked again first.

use super::ctx::{CtxMode, RunCtx};
use super::op::{ChunkLookups, ChunkOutput, Op1};
use crate::error::EngineResult;
use idsync_core::{Action, Situation};
use serde_json::Value;

/// `POST sync?_action=performAction` (docs/rest.md#synchronization): an explicit action without assessment.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplicitAction {
    pub action: Action,
    pub source_id: Option<String>,
    pub target_id: Option<String>,
    pub link_qualifier: String,
    /// When given, the situation is assessed again first and the action refused if it changed.
    pub situation: Option<Situation>,
    /// A target-side operation (IDM's `target` parameter): the situation is the target phase's.
    pub target_side: bool,
}

impl RunCtx {
    /// Performs an explicit action on one source/target pair, with its hooks and link handling
    /// and a sync audit entry; no situation is assessed and no `postAction` runs.
    pub async fn perform(
        &self,
        engine: &crate::Engine,
        req: &ExplicitAction,
        out: &mut ChunkOutput,
    ) {
        let mut op = Op1::new(&req.link_qualifier, "source");
        op.source_id.clone_from(&req.source_id);
        op.target_id.clone_from(&req.target_id);
        op.action = Some(req.action);
        let result: EngineResult<()> = async {
            let source = match &req.source_id {
                Some(id) => Some(self.source_set.get(id).await?.ok_or_else(|| {
                    crate::EngineError::NotFound(format!(
                        "{}/{id} not found",
                        self.config.source_str
                    ))
                })?),
                None => None,
            };
            let target = match &req.target_id {
                Some(id) => self.target_set.get(id).await?,
                None => None,
            };
            let link = match (&req.source_id, &req.target_id) {
                _ if !self.config.enable_linking => None,
                (Some(sid), _) => {
                    self.links
                        .by_source(&engine.repo, &req.link_qualifier, sid)
                        .await?
                }
                (None, Some(tid)) => {
                    self.links
                        .by_target(&engine.repo, &req.link_qualifier, tid)
                        .await?
                }
                (None, None) => None,
            };
            if let Some(expected) = req.situation {
                self.check_situation(engine, req, source.as_ref(), expected)
                    .await?;
            }
            if op.target_id.is_none()
                && let Some(l) = &link
            {
                op.target_id = Some(self.links.target_id(l).to_string());
            }
            op.link_existed = link.is_some();
            op.had_target = target.is_some();
            if self.mode == CtxMode::Sync {
                op.old_target.clone_from(&target);
            }
            self.act(req.action, source.as_ref(), target, link, &mut op, out)
                .await
        }
        .await;
        if let Err(e) = result {
            op.fail(&e);
        }
        self.finish(op, true, out);
    }

    /// Assesses the pair again (source or target side) and fails when the situation is no
    /// longer `expected` (docs/rest.md#synchronization).
    async fn check_situation(
        &self,
        engine: &crate::Engine,
        req: &ExplicitAction,
        source: Option<&Value>,
        expected: Situation,
    ) -> EngineResult<()> {
        let mut scratch = Op1::new(&req.link_qualifier, "source");
        scratch.source_id.clone_from(&req.source_id);
        scratch.target_id.clone_from(&req.target_id);
        let mut ignored = ChunkOutput::default();
        match (req.target_side, source) {
            (true, _) => {
                self.assess_target_op(engine, None, &mut scratch).await?;
            }
            (false, Some(source)) => {
                self.assess_source_op(
                    engine,
                    &ChunkLookups::default(),
                    source,
                    &mut scratch,
                    &mut ignored,
                )
                .await?;
            }
            (false, None) => {
                return Err(crate::EngineError::BadRequest(
                    "a situation to re-check on the source side needs sourceId".into(),
                ));
            }
        }
        match scratch.situation {
            Some(now) if now == expected => Ok(()),
            now => Err(crate::EngineError::Conflict(format!(
                "the situation changed: expected {expected}, now {}",
                now.map_or("none", Situation::as_str)
            ))),
        }
    }
}
