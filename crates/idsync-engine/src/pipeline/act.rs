//! Acting on a decision: `prepare` runs what precedes the write and computes the new target (an
//! `Intent`, nothing written), `apply` does the write and what follows it — a managed target's
//! write becomes an operation of the chunk's change set, a connected system's goes out — and a
//! dry run records its plan entry instead.
//!
//! Hook order for a first-time CREATE (docs/configuration.md#mappings): properties → onCreate →
//! target create → onLink → link create → postAction.

use super::ctx::{CtxMode, RunCtx};
use super::op::*;
use super::stats::TargetEffect;
use crate::error::{EngineError, EngineResult};
use crate::managed_set::new_id;
use idsync_connectors::ConnectorError;
use idsync_core::{Action, Situation};
use idsync_repo::{Link, Op, PlanEntry};
use serde_json::{Value, json};
use std::time::Instant;

impl RunCtx {
    /// Performs an action (docs/configuration.md#mappings). In a dry run, records what would happen instead.
    pub(super) async fn act(
        &self,
        action: Action,
        source: Option<&Value>,
        target: Option<Value>,
        link: Option<Link>,
        op: &mut Op1<'_>,
        out: &mut ChunkOutput,
    ) -> EngineResult<()> {
        let intent = self.prepare(action, source, &target, &link, op, out)?;
        self.apply(intent, source, target, link, op, out).await
    }

    /// The part of an action before its write: the scripts that precede it run and the new
    /// target is computed; nothing is written. A dry run records its plan entry here.
    pub(super) fn prepare(
        &self,
        action: Action,
        source: Option<&Value>,
        target: &Option<Value>,
        link: &Option<Link>,
        op: &mut Op1<'_>,
        out: &mut ChunkOutput,
    ) -> EngineResult<Intent> {
        let analyze = self.opts.analyze;
        Ok(match action {
            Action::Create => {
                let source = source
                    .ok_or_else(|| EngineError::Conflict("CREATE needs a source object".into()))?;
                if target.is_some() {
                    return Err(EngineError::Conflict("target object already exists".into()));
                }
                let t = Instant::now();
                let mut value = self.mapping.prepare_create(source, &self.hook(op))?;
                out.stats.time("onCreateScript", t.elapsed());
                if analyze {
                    op.target_effect = TargetEffect::Created;
                    let diff = idsync_mapping::diff(&Value::Null, &value);
                    self.plan(op, Some(diff), out);
                    return Ok(Intent::Nothing);
                }
                // A managed target's id is chosen now, so that the objects after this one in
                // the chunk can see the new target by its id before the commit.
                if self.target_managed_type.is_some()
                    && let Some(o) = value.as_object_mut()
                    && !o.get("_id").is_some_and(Value::is_string)
                {
                    o.insert("_id".into(), Value::String(new_id()));
                }
                // A managed target is created through its type's lifecycle as a REST create is:
                // onCreate → onValidate → onStore (docs/configuration.md#confmanagedjson).
                if let Some(scripts) = &self.target_scripts
                    && let Some(id) = value.get("_id").and_then(Value::as_str).map(str::to_string)
                {
                    value = scripts.before_create(&id, value, &self.caller)?;
                    if let Some(o) = value.as_object_mut() {
                        o.insert("_id".into(), Value::String(id));
                    }
                }
                Intent::Create { value }
            }
            Action::Update | Action::Link => {
                let tid = op
                    .target_id
                    .clone()
                    .ok_or_else(|| EngineError::Conflict(format!("{action} needs a target id")))?;
                let Some(current) = target.clone() else {
                    // IDM: UPDATE with a link but no target object does nothing and does not
                    // fail (ObjectMappingTest.testUpdateActionWithNullTargetObject).
                    self.plan(op, None, out);
                    return Ok(Intent::Nothing);
                };
                let mut new = None;
                let mut diff_out = None;
                if action == Action::Update {
                    let source = source.ok_or_else(|| {
                        EngineError::Conflict("UPDATE needs a source object".into())
                    })?;
                    let t = Instant::now();
                    let plan = self
                        .mapping
                        .prepare_update(source, &current, &self.hook(op))?;
                    out.stats.time("onUpdateScript", t.elapsed());
                    op.target_effect = if plan.changed {
                        TargetEffect::Updated
                    } else {
                        TargetEffect::Unchanged
                    };
                    if plan.changed {
                        new = Some(plan.new_target);
                    }
                    diff_out = Some(plan.diff);
                }
                if analyze {
                    self.plan(op, diff_out, out);
                    return Ok(Intent::Nothing);
                }
                if let Some(scripts) = &self.target_scripts
                    && let Some(n) = new.take()
                {
                    new = Some(scripts.before_update(&tid, &current, n, &self.caller)?);
                }
                let linked_here = link.as_ref().is_some_and(|l| {
                    self.links.norm_target(self.links.target_id(l)) == self.links.norm_target(&tid)
                });
                Intent::Write {
                    id: tid,
                    current,
                    new,
                    link: self.config.enable_linking && !linked_here && source.is_some(),
                }
            }
            Action::Delete => {
                if analyze {
                    op.target_effect = if target.is_some() {
                        TargetEffect::Deleted
                    } else {
                        TargetEffect::None
                    };
                    self.plan(op, None, out);
                    return Ok(Intent::Nothing);
                }
                match (target, op.target_id.clone()) {
                    (Some(t), Some(tid)) => {
                        let tm = Instant::now();
                        self.mapping.on_delete(source, t, &self.hook(op))?;
                        out.stats.time("onDeleteScript", tm.elapsed());
                        if let Some(scripts) = &self.target_scripts {
                            scripts.before_delete(&tid, t, &self.caller)?;
                        }
                        Intent::Delete {
                            target: Some((tid, t.clone())),
                        }
                    }
                    _ => Intent::Delete { target: None },
                }
            }
            Action::Unlink => {
                if analyze {
                    self.plan(op, None, out);
                    return Ok(Intent::Nothing);
                }
                Intent::Unlink
            }
            Action::Exception => {
                let message = format!(
                    "Situation {} marked as EXCEPTION",
                    op.situation.map_or("?", Situation::as_str)
                );
                // Implicit sync rethrows it: the mapping fails and later ones are skipped
                // (docs/configuration.md#mappings); a recon keeps SUCCESS with the message.
                if self.mode == CtxMode::Sync {
                    return Err(EngineError::Conflict(message));
                }
                op.message = Some(message);
                if analyze {
                    self.plan(op, None, out);
                }
                Intent::Nothing
            }
            Action::Ignore | Action::Report | Action::Noreport | Action::Async => {
                if analyze {
                    self.plan(op, None, out);
                }
                Intent::Nothing
            }
        })
    }

    /// The write of a prepared action and what follows it: the target write, `onLink` and the
    /// link, or `onUnlink` and the link's removal.
    pub(super) async fn apply(
        &self,
        intent: Intent,
        source: Option<&Value>,
        target: Option<Value>,
        link: Option<Link>,
        op: &mut Op1<'_>,
        out: &mut ChunkOutput,
    ) -> EngineResult<()> {
        match intent {
            Intent::Nothing => {}
            Intent::Create { mut value } => {
                let id = self
                    .create_target(&mut value, op.adopt_existing, out)
                    .await?;
                out.written.push(self.links.norm_target(&id));
                op.target_id = Some(id.clone());
                op.target_effect = TargetEffect::Created;
                op.claimed.push(id);
                if self.config.enable_linking
                    && let Some(source) = source
                {
                    self.write_link(source, &value, link.as_ref(), op, out)?;
                }
            }
            Intent::Write {
                id,
                current,
                new,
                link: links,
            } => {
                if let Some(new) = new {
                    self.update_target(&id, &current, new, out).await?;
                    out.written.push(self.links.norm_target(&id));
                }
                if links && let Some(s) = source {
                    self.write_link(s, &current, link.as_ref(), op, out)?;
                }
            }
            Intent::Delete { target: doomed } => {
                if let Some((tid, t)) = &doomed {
                    self.delete_target(tid, t, out).await?;
                    out.written.push(self.links.norm_target(tid));
                    op.target_effect = TargetEffect::Deleted;
                }
                self.remove_link(source, target.as_ref(), link, op, out)?;
            }
            Intent::Unlink => self.remove_link(source, target.as_ref(), link, op, out)?,
        }
        Ok(())
    }

    /// `onUnlink`, then the link's removal (when there is a link).
    pub(super) fn remove_link(
        &self,
        source: Option<&Value>,
        target: Option<&Value>,
        link: Option<Link>,
        op: &Op1<'_>,
        out: &mut ChunkOutput,
    ) -> EngineResult<()> {
        if let Some(l) = link {
            let null = Value::Null;
            self.mapping
                .on_unlink(source, target.unwrap_or(&null), &self.hook(op))?;
            out.ops.push(Op::DeleteLink {
                id: l.id,
                expected_rev: None,
            });
        }
        Ok(())
    }

    /// Creates the target: a managed object joins the commit, a system object is created now.
    /// With `adopt` (an earlier attempt of the page meant to create it), a system object the
    /// create collides with is taken as the one created.
    pub(super) async fn create_target(
        &self,
        obj: &mut Value,
        adopt: bool,
        out: &mut ChunkOutput,
    ) -> EngineResult<String> {
        let given = obj.get("_id").and_then(Value::as_str).map(str::to_string);
        match &self.target_managed_type {
            Some(object_type) => {
                let id = given.unwrap_or_else(new_id);
                if let Some(o) = obj.as_object_mut() {
                    o.insert("_id".into(), Value::String(id.clone()));
                }
                out.ops.push(Op::CreateObject {
                    object_type: object_type.clone(),
                    id: id.clone(),
                    value: obj.clone(),
                });
                Ok(id)
            }
            None => {
                // The connector gets the object itself; `obj` becomes what it created.
                let kept = adopt.then(|| obj.clone());
                let created = match (
                    self.target_set
                        .create(given.as_deref(), std::mem::take(obj))
                        .await,
                    kept,
                ) {
                    (Err(ConnectorError::AlreadyExists(m)), Some(mine)) => {
                        match self
                            .target_set
                            .find_existing(given.as_deref(), &mine)
                            .await?
                        {
                            Some(existing) => {
                                tracing::info!(
                                    mapping = %self.mapping.name(),
                                    "adopted the target an earlier attempt of this page created"
                                );
                                existing
                            }
                            None => return Err(ConnectorError::AlreadyExists(m).into()),
                        }
                    }
                    (r, _) => r?,
                };
                let id = created
                    .get("_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        EngineError::Connector(ConnectorError::Internal(
                            "created object has no _id".into(),
                        ))
                    })?
                    .to_string();
                *obj = created;
                Ok(id)
            }
        }
    }

    pub(super) async fn update_target(
        &self,
        id: &str,
        current: &Value,
        mut new: Value,
        out: &mut ChunkOutput,
    ) -> EngineResult<()> {
        let rev = current
            .get("_rev")
            .and_then(Value::as_str)
            .map(str::to_string);
        let t = Instant::now();
        match &self.target_managed_type {
            Some(object_type) => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("_rev");
                }
                self.keep_old(id, current, out);
                out.ops.push(Op::UpdateObject {
                    object_type: object_type.clone(),
                    id: id.to_string(),
                    expected_rev: rev,
                    value: new,
                });
            }
            None => {
                self.target_set.update(id, rev.as_deref(), new).await?;
            }
        }
        out.stats.time("updateTargetObject", t.elapsed());
        Ok(())
    }

    pub(super) async fn delete_target(
        &self,
        id: &str,
        current: &Value,
        out: &mut ChunkOutput,
    ) -> EngineResult<()> {
        let rev = current
            .get("_rev")
            .and_then(Value::as_str)
            .map(str::to_string);
        let t = Instant::now();
        match &self.target_managed_type {
            Some(object_type) => {
                self.keep_old(id, current, out);
                out.ops.push(Op::DeleteObject {
                    object_type: object_type.clone(),
                    id: id.to_string(),
                    expected_rev: rev,
                });
            }
            None => match self.target_set.delete(id, rev.as_deref()).await {
                Ok(_) | Err(ConnectorError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            },
        }
        out.stats.time("deleteTargetObject", t.elapsed());
        Ok(())
    }

    /// Keeps a managed target's value before its update or delete when its type's `post*`
    /// scripts will want it as `oldObject`.
    fn keep_old(&self, id: &str, current: &Value, out: &mut ChunkOutput) {
        if self
            .target_scripts
            .as_ref()
            .is_some_and(|s| s.has_after_hooks())
        {
            out.managed_old.insert(id.to_string(), current.clone());
        }
    }

    /// Creates (or re-points) the link of this op: `onLink`, then the link record.
    pub(super) fn write_link(
        &self,
        source: &Value,
        target: &Value,
        existing: Option<&Link>,
        op: &mut Op1<'_>,
        out: &mut ChunkOutput,
    ) -> EngineResult<()> {
        let (Some(sid), Some(tid)) = (op.source_id.clone(), op.target_id.clone()) else {
            return Ok(());
        };
        let t = Instant::now();
        self.mapping.on_link(Some(source), target, &self.hook(op))?;
        out.stats.time("onLinkScript", t.elapsed());
        let mut link = self.links.new_link(&op.qualifier, &sid, &tid);
        match existing {
            Some(l) => {
                link.id = l.id.clone();
                link.rev = l.rev.clone();
                out.ops.push(Op::UpdateLink {
                    link,
                    expected_rev: None,
                });
            }
            None => {
                out.ops.push(Op::CreateLink(link));
                op.link_created = true;
            }
        }
        Ok(())
    }

    pub(super) fn plan(
        &self,
        op: &Op1<'_>,
        diff: Option<Vec<idsync_mapping::DiffEntry>>,
        out: &mut ChunkOutput,
    ) {
        if !self.opts.analyze {
            return;
        }
        let diff: Vec<Value> = diff
            .unwrap_or_default()
            .into_iter()
            .map(|d| serde_json::to_value(&d).unwrap_or(Value::Null))
            .collect();
        out.plan.push(PlanEntry {
            id: new_id(),
            run_id: self.run_id.clone(),
            entry: json!({
                "reconId": self.run_id,
                "phase": op.phase,
                "sourceId": op.source_id,
                "targetId": op.target_id,
                "linkQualifier": op.qualifier,
                "situation": op.situation.map(Situation::as_str),
                "action": op.action.map(Action::as_str),
                "ambiguousTargetIds": if op.ambiguous.is_empty() { Value::Null } else { json!(op.ambiguous) },
                "diff": diff,
            }),
        });
    }
}
