//! Policies (docs/configuration.md#mappings): which action a situation gets, and the policy's `postAction`.
//! Owns choosing; the engine performs the action and calls [`CompiledMapping::post_action`]
//! after it.

use crate::compiled::{CompiledAction, CompiledMapping, CompiledPolicy};
use crate::error::{MappingError, Result};
use idsync_core::{Action, Situation};
use idsync_script::Bindings;
use serde_json::{Value, json};

/// What a decision may look at.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecisionContext<'a> {
    pub source: Option<&'a Value>,
    pub target: Option<&'a Value>,
    pub link_qualifier: &'a str,
    /// True in the source phase and implicit sync, false in the target phase.
    pub source_action: bool,
    pub recon_id: Option<&'a str>,
    pub source_id: Option<&'a str>,
    pub target_id: Option<&'a str>,
    pub ambiguous_target_ids: &'a [String],
}

/// The chosen action and the policy that chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub situation: Situation,
    pub action: Action,
    /// The index (in the mapping's `policies`) of the matching policy; `None` when the
    /// situation's default action applied.
    pub policy: Option<usize>,
}

impl CompiledMapping {
    /// The action for `situation`: the first policy of that situation (in file order) whose
    /// condition holds on `{"object": <source or null>, "linkQualifier": q}`; with none, the
    /// situation's default action (docs/configuration.md#mappings, code column).
    pub fn decide(&self, situation: Situation, ctx: &DecisionContext<'_>) -> Result<Decision> {
        for p in self.policies.iter().filter(|p| p.situation == situation) {
            if let Some(condition) = &p.condition {
                let qualifier = Value::String(ctx.link_qualifier.into());
                let null = Value::Null;
                let content = [
                    ("object", Some(ctx.source.unwrap_or(&null))),
                    ("linkQualifier", Some(&qualifier)),
                ];
                if !condition.holds(&content)? {
                    continue;
                }
            }
            let action = self.policy_action(p, ctx)?;
            return Ok(Decision {
                situation,
                action,
                policy: Some(p.index),
            });
        }
        Ok(Decision {
            situation,
            action: situation.default_action(),
            policy: None,
        })
    }

    fn policy_action(&self, p: &CompiledPolicy, ctx: &DecisionContext<'_>) -> Result<Action> {
        let script = match &p.action {
            CompiledAction::Name(a) => return Ok(*a),
            CompiledAction::Script(s) => s,
        };
        let null = Value::Null;
        let action_param = json!({
            "reconId": ctx.recon_id,
            "mapping": self.config.name,
            "situation": p.situation.as_str(),
            "sourceId": ctx.source_id,
            "targetId": ctx.target_id,
            "linkQualifier": ctx.link_qualifier,
            "ambiguousTargetIds": ctx.ambiguous_target_ids,
            "_action": "performAction",
        });
        let result = script.eval(
            &Bindings::new()
                .with("source", ctx.source.unwrap_or(&null))
                .with("target", ctx.target.unwrap_or(&null))
                .with_owned("linkQualifier", Value::String(ctx.link_qualifier.into()))
                .with_owned("sourceAction", Value::Bool(ctx.source_action))
                .with_owned("recon", json!({ "actionParam": action_param })),
        )?;
        result
            .as_str()
            .and_then(|s| s.parse::<Action>().ok())
            .ok_or_else(|| MappingError::InvalidAction {
                mapping: self.config.name.clone(),
                index: p.index,
                situation: p.situation.to_string(),
                found: result.to_string(),
            })
    }

    /// Runs the `postAction` of the decision's policy after the engine performed the action,
    /// only when the action runs post actions (not IGNORE, ASYNC or EXCEPTION). Quirk kept from
    /// IDM: for REPORT/NOREPORT with no matching policy, the first policy listed for the
    /// situation supplies the `postAction`. Returns whether a script ran.
    pub fn post_action(&self, decision: &Decision, ctx: &DecisionContext<'_>) -> Result<bool> {
        if !decision.action.runs_post_action() {
            return Ok(false);
        }
        let policy = match (decision.policy, decision.action) {
            (Some(i), _) => self.policies.iter().find(|p| p.index == i),
            (None, Action::Report | Action::Noreport) => self
                .policies
                .iter()
                .find(|p| p.situation == decision.situation),
            (
                None,
                Action::Create
                | Action::Update
                | Action::Delete
                | Action::Link
                | Action::Unlink
                | Action::Exception
                | Action::Ignore
                | Action::Async,
            ) => None,
        };
        let Some(script) = policy.and_then(|p| p.post_action.as_ref()) else {
            return Ok(false);
        };
        let null = Value::Null;
        script.eval(
            &Bindings::new()
                .with("source", ctx.source.unwrap_or(&null))
                .with("target", ctx.target.unwrap_or(&null))
                .with_owned("action", Value::String(decision.action.as_str().into()))
                .with_owned("sourceAction", Value::Bool(ctx.source_action))
                .with_owned("linkQualifier", Value::String(ctx.link_qualifier.into()))
                .with_owned(
                    "reconId",
                    ctx.recon_id
                        .map_or(Value::Null, |r| Value::String(r.into())),
                )
                .with_owned(
                    "situation",
                    Value::String(decision.situation.as_str().into()),
                ),
        )?;
        Ok(true)
    }
}
