//! The mapping's hooks with their documented scopes (docs/configuration.md#mappings), and the two
//! composite steps CREATE and UPDATE need before the engine writes: [`prepare_create`] and
//! [`prepare_update`]. Owns evaluating the hooks; the ENGINE sequences them around its writes in
//! the order of §2.6 (`properties` → `onCreate` → create → `onLink` → link → `postAction`).
//!
//! [`prepare_create`]: CompiledMapping::prepare_create
//! [`prepare_update`]: CompiledMapping::prepare_update

use crate::compiled::CompiledMapping;
use crate::diff::{DiffEntry, diff};
use crate::error::Result;
use crate::properties::PropertyContext;
use idsync_core::Situation;
use idsync_script::{Bindings, Script};
use serde_json::{Map, Value};

/// The variables every hook sees besides `source`, `target` and `oldTarget`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HookContext<'a> {
    pub situation: Option<Situation>,
    pub link_qualifier: &'a str,
    pub source_id: Option<&'a str>,
    pub target_id: Option<&'a str>,
    /// The source before the change (implicit sync only).
    pub old_source: Option<&'a Value>,
    /// The request context the engine exposes to scripts (`context`), if any.
    pub context: Option<&'a Value>,
}

/// What UPDATE would write.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdatePlan {
    /// The target after `properties` and `onUpdate`.
    pub new_target: Value,
    /// Whether `new_target` deep-differs from the current target, `_id` and `_rev` included
    /// (so a mapping that changes `_id` is a change, and the engine's write refuses it).
    /// UPDATE writes the target only when this is true.
    pub changed: bool,
    /// The field-level changes, without `_id`/`_rev` (the plan diff of docs/rest.md).
    pub diff: Vec<DiffEntry>,
}

fn opt_str(s: Option<&str>) -> Value {
    s.map_or(Value::Null, |s| Value::String(s.to_string()))
}

impl CompiledMapping {
    fn hook_bindings<'a>(
        &'a self,
        source: Option<&'a Value>,
        target: &'a Value,
        old_target: Option<&'a Value>,
        ctx: &HookContext<'a>,
        null: &'a Value,
    ) -> Bindings<'a> {
        let mut b = Bindings::new()
            .with("source", source.unwrap_or(null))
            .with("target", target)
            .with_owned("situation", opt_str(ctx.situation.map(Situation::as_str)))
            .with_owned(
                "linkQualifier",
                Value::String(ctx.link_qualifier.to_string()),
            )
            .with_owned("sourceId", opt_str(ctx.source_id))
            .with_owned("targetId", opt_str(ctx.target_id))
            .with("oldSource", ctx.old_source.unwrap_or(null))
            .with("context", ctx.context.unwrap_or(null))
            .with("mappingConfig", &self.config.raw);
        if let Some(old) = old_target {
            b.set("oldTarget", old);
        }
        b
    }

    /// Runs a hook that may change `target`; the change persists (create and update).
    fn run_mutating(
        &self,
        script: Option<&Script>,
        source: &Value,
        target: &mut Value,
        old_target: Option<&Value>,
        ctx: &HookContext<'_>,
    ) -> Result<()> {
        let Some(script) = script else { return Ok(()) };
        let null = Value::Null;
        let (_, mut captured) = {
            let current: &Value = target;
            let bindings = self.hook_bindings(Some(source), current, old_target, ctx, &null);
            script.eval_capturing(&bindings, &["target"])?
        };
        // One capture was asked for, so one came back; `pop` keeps this free of indexing.
        if let Some(new_target) = captured.pop() {
            *target = new_target;
        }
        Ok(())
    }

    fn run_plain(
        &self,
        script: Option<&Script>,
        source: Option<&Value>,
        target: &Value,
        old_target: Option<&Value>,
        ctx: &HookContext<'_>,
    ) -> Result<bool> {
        let Some(script) = script else {
            return Ok(false);
        };
        let null = Value::Null;
        script.eval(&self.hook_bindings(source, target, old_target, ctx, &null))?;
        Ok(true)
    }

    /// `onCreate`: runs after properties, before the create request; changes to `target` persist.
    pub fn on_create(
        &self,
        source: &Value,
        target: &mut Value,
        ctx: &HookContext<'_>,
    ) -> Result<()> {
        self.run_mutating(self.on_create.as_ref(), source, target, None, ctx)
    }

    /// `onUpdate`: runs after properties on the copy of the current target, always (even when
    /// nothing changed); changes to `target` persist.
    pub fn on_update(
        &self,
        source: &Value,
        target: &mut Value,
        old_target: &Value,
        ctx: &HookContext<'_>,
    ) -> Result<()> {
        self.run_mutating(
            self.on_update.as_ref(),
            source,
            target,
            Some(old_target),
            ctx,
        )
    }

    /// `onDelete`: runs before the target is deleted; `target` and `oldTarget` are the target
    /// being deleted. Returns whether a script ran.
    pub fn on_delete(
        &self,
        source: Option<&Value>,
        target: &Value,
        ctx: &HookContext<'_>,
    ) -> Result<bool> {
        self.run_plain(self.on_delete.as_ref(), source, target, Some(target), ctx)
    }

    /// `onLink`: runs before the link record is created. Returns whether a script ran.
    pub fn on_link(
        &self,
        source: Option<&Value>,
        target: &Value,
        ctx: &HookContext<'_>,
    ) -> Result<bool> {
        self.run_plain(self.on_link.as_ref(), source, target, None, ctx)
    }

    /// `onUnlink`: runs before the link record is deleted. Returns whether a script ran.
    pub fn on_unlink(
        &self,
        source: Option<&Value>,
        target: &Value,
        ctx: &HookContext<'_>,
    ) -> Result<bool> {
        self.run_plain(self.on_unlink.as_ref(), source, target, None, ctx)
    }

    /// The `result` script, once after a run (also failed and canceled runs), with the
    /// statistics maps of docs/rest.md#reconciliation: `stats` holds `source`, `target` and `global`.
    /// Returns whether a script ran.
    pub fn result(&self, stats: &Value) -> Result<bool> {
        let Some(script) = &self.result else {
            return Ok(false);
        };
        let null = Value::Null;
        let part = |k: &str| stats.get(k).unwrap_or(&null);
        script.eval(
            &Bindings::new()
                .with("source", part("source"))
                .with("target", part("target"))
                .with("global", part("global")),
        )?;
        Ok(true)
    }

    /// The object CREATE would send: an empty target, then `properties`, then `onCreate`.
    pub fn prepare_create(&self, source: &Value, ctx: &HookContext<'_>) -> Result<Value> {
        let mut target = Value::Object(Map::new());
        let pctx = PropertyContext {
            link_qualifier: ctx.link_qualifier,
            old_source: ctx.old_source,
            old_target: None,
        };
        self.map_properties(source, &mut target, &pctx)?;
        self.on_create(source, &mut target, ctx)?;
        Ok(target)
    }

    /// What UPDATE would write: a copy of `current_target`, then `properties`, then `onUpdate`
    /// (always called), then the deep comparison with the current target.
    ///
    /// A null `current_target` (a link whose target object could not be loaded) is no update:
    /// nothing runs and nothing changes, as IDM's `testUpdateActionWithNullTargetObject` pins.
    pub fn prepare_update(
        &self,
        source: &Value,
        current_target: &Value,
        ctx: &HookContext<'_>,
    ) -> Result<UpdatePlan> {
        if current_target.is_null() {
            return Ok(UpdatePlan {
                new_target: Value::Null,
                changed: false,
                diff: Vec::new(),
            });
        }
        let mut new_target = current_target.clone();
        let pctx = PropertyContext {
            link_qualifier: ctx.link_qualifier,
            old_source: ctx.old_source,
            old_target: Some(current_target),
        };
        self.map_properties(source, &mut new_target, &pctx)?;
        self.on_update(source, &mut new_target, current_target, ctx)?;
        let changed = new_target != *current_target;
        let diff = if changed {
            diff(current_target, &new_target)
        } else {
            Vec::new()
        };
        Ok(UpdatePlan {
            new_target,
            changed,
            diff,
        })
    }
}
