//! The compiled form of one mapping: every script compiled once, with an origin naming the
//! mapping and the place, and every condition ready to evaluate. Owns building and the
//! low-level "evaluate this condition / script" helpers the other modules share; it must not
//! decide anything (assessment, policies and properties live in their own modules).

use crate::condition::CompiledCondition;
use crate::error::{MappingError, Result};
use idsync_config::{
    ActionSpec, Condition, Correlation, LinkQualifiers, Mapping, PropertyMapping, ScriptSpec,
};
use idsync_core::{Action, JsonPointer, Situation};
use idsync_script::{HostSlot, Script, ScriptOrigin};
use serde_json::Value;

/// One property mapping, compiled.
#[derive(Debug, Clone)]
pub(crate) struct CompiledProperty {
    pub(crate) target: JsonPointer,
    pub(crate) source: Option<JsonPointer>,
    pub(crate) transform: Option<Script>,
    pub(crate) condition: Option<CompiledCondition>,
    pub(crate) default: Option<Value>,
}

/// A policy's action, compiled.
#[derive(Debug, Clone)]
pub(crate) enum CompiledAction {
    Name(Action),
    Script(Script),
}

/// One policy, compiled; `index` is its position in the mapping's `policies` list.
#[derive(Debug, Clone)]
pub(crate) struct CompiledPolicy {
    pub(crate) index: usize,
    pub(crate) situation: Situation,
    pub(crate) action: CompiledAction,
    pub(crate) condition: Option<CompiledCondition>,
    pub(crate) post_action: Option<Script>,
}

/// How the mapping correlates, compiled.
#[derive(Debug, Clone)]
pub(crate) enum CompiledCorrelation {
    /// (link qualifier, query script), at most one per qualifier.
    Queries(Vec<(String, Script)>),
    Script(Script),
}

/// How the mapping lists its link qualifiers, compiled.
#[derive(Debug, Clone)]
pub(crate) enum CompiledQualifiers {
    List(Vec<String>),
    Script(Script),
}

/// A mapping with every script compiled once. Cheap to share: it is `Send + Sync` and the
/// recon's worker tasks hold it behind an `Arc`.
#[derive(Debug, Clone)]
pub struct CompiledMapping {
    pub(crate) config: Mapping,
    pub(crate) properties: Vec<CompiledProperty>,
    pub(crate) valid_source: Option<Script>,
    pub(crate) valid_target: Option<Script>,
    pub(crate) source_condition: Option<CompiledCondition>,
    pub(crate) correlation: Option<CompiledCorrelation>,
    pub(crate) link_qualifiers: CompiledQualifiers,
    pub(crate) policies: Vec<CompiledPolicy>,
    pub(crate) on_create: Option<Script>,
    pub(crate) on_update: Option<Script>,
    pub(crate) on_delete: Option<Script>,
    pub(crate) on_link: Option<Script>,
    pub(crate) on_unlink: Option<Script>,
    pub(crate) result: Option<Script>,
}

/// The qualifier a correlation query without `linkQualifier` belongs to.
pub const DEFAULT_QUALIFIER: &str = "default";

struct Compiler<'a> {
    mapping: &'a str,
    host: Option<&'a HostSlot>,
}

impl Compiler<'_> {
    /// The origin reads `<config origin> (mapping <m> <place>)`, e.g.
    /// `conf/sync.json /mappings/0/properties/2/transform (mapping hr_user property /mail
    /// transform)`: the JSON path to find it and the mapping-level name of what failed.
    fn script(&self, spec: &ScriptSpec, place: &str) -> Result<Script> {
        let origin = ScriptOrigin::file_used_by(
            spec.origin.clone(),
            format!("mapping {} {place}", self.mapping),
        );
        let script = Script::compile(&spec.source, origin, spec.globals.clone())?;
        Ok(match self.host {
            Some(slot) => script.with_host(slot.clone()),
            None => script,
        })
    }

    fn opt(&self, spec: Option<&ScriptSpec>, place: &str) -> Result<Option<Script>> {
        spec.map(|s| self.script(s, place)).transpose()
    }

    fn condition(&self, c: &Condition, place: &str) -> Result<CompiledCondition> {
        match c {
            Condition::Filter(f, _) => Ok(CompiledCondition::filter(f)),
            Condition::Script(s) => Ok(CompiledCondition::Script(self.script(s, place)?)),
        }
    }

    fn opt_condition(
        &self,
        c: Option<&Condition>,
        place: &str,
    ) -> Result<Option<CompiledCondition>> {
        c.map(|c| self.condition(c, place)).transpose()
    }

    fn property(&self, p: &PropertyMapping) -> Result<CompiledProperty> {
        Ok(CompiledProperty {
            target: p.target.clone(),
            source: p.source.clone(),
            transform: self.opt(
                p.transform.as_ref(),
                &format!("property {} transform", p.target),
            )?,
            condition: self.opt_condition(
                p.condition.as_ref(),
                &format!("property {} condition", p.target),
            )?,
            default: p.default.clone(),
        })
    }

    fn correlation(&self, c: &Correlation) -> Result<CompiledCorrelation> {
        match c {
            Correlation::Script(s) => Ok(CompiledCorrelation::Script(
                self.script(s, "correlationScript")?,
            )),
            Correlation::Queries(queries) => {
                let mut out: Vec<(String, Script)> = Vec::with_capacity(queries.len());
                for (i, q) in queries.iter().enumerate() {
                    let qualifier = q
                        .link_qualifier
                        .clone()
                        .unwrap_or_else(|| DEFAULT_QUALIFIER.to_string());
                    if out.iter().any(|(existing, _)| *existing == qualifier) {
                        return Err(MappingError::Config {
                            mapping: self.mapping.to_string(),
                            place: format!("correlationQuery {i}"),
                            message: format!(
                                "a second correlation query for link qualifier \"{qualifier}\""
                            ),
                        });
                    }
                    let script =
                        self.script(&q.script, &format!("correlationQuery ({qualifier})"))?;
                    out.push((qualifier, script));
                }
                Ok(CompiledCorrelation::Queries(out))
            }
        }
    }

    fn policy(&self, index: usize, p: &idsync_config::Policy) -> Result<CompiledPolicy> {
        let place = format!("policy {index} ({})", p.situation);
        Ok(CompiledPolicy {
            index,
            situation: p.situation,
            action: match &p.action {
                ActionSpec::Name(a) => CompiledAction::Name(*a),
                ActionSpec::Script(s) => {
                    CompiledAction::Script(self.script(s, &format!("{place} action"))?)
                }
            },
            condition: self.opt_condition(p.condition.as_ref(), &format!("{place} condition"))?,
            post_action: self.opt(p.post_action.as_ref(), &format!("{place} postAction"))?,
        })
    }
}

impl CompiledMapping {
    /// Compiles every script of `mapping` once. A syntax error is reported here, naming the
    /// mapping and the place, so a broken project fails at load and not mid-run.
    pub fn build(mapping: &Mapping) -> Result<CompiledMapping> {
        Self::build_hosted(mapping, None)
    }

    /// [`CompiledMapping::build`] with every script's `openidm` calls answered by the host in
    /// `host` (docs/scripts.md).
    pub fn build_hosted(mapping: &Mapping, host: Option<&HostSlot>) -> Result<CompiledMapping> {
        let c = Compiler {
            mapping: &mapping.name,
            host,
        };
        Ok(CompiledMapping {
            properties: mapping
                .properties
                .iter()
                .map(|p| c.property(p))
                .collect::<Result<_>>()?,
            valid_source: c.opt(mapping.valid_source.as_ref(), "validSource")?,
            valid_target: c.opt(mapping.valid_target.as_ref(), "validTarget")?,
            source_condition: c
                .opt_condition(mapping.source_condition.as_ref(), "sourceCondition")?,
            correlation: mapping
                .correlation
                .as_ref()
                .map(|x| c.correlation(x))
                .transpose()?,
            link_qualifiers: match &mapping.link_qualifiers {
                LinkQualifiers::List(l) => CompiledQualifiers::List(l.clone()),
                LinkQualifiers::Script(s) => {
                    CompiledQualifiers::Script(c.script(s, "linkQualifiers")?)
                }
            },
            policies: mapping
                .policies
                .iter()
                .enumerate()
                .map(|(i, p)| c.policy(i, p))
                .collect::<Result<_>>()?,
            on_create: c.opt(mapping.on_create.as_ref(), "onCreate")?,
            on_update: c.opt(mapping.on_update.as_ref(), "onUpdate")?,
            on_delete: c.opt(mapping.on_delete.as_ref(), "onDelete")?,
            on_link: c.opt(mapping.on_link.as_ref(), "onLink")?,
            on_unlink: c.opt(mapping.on_unlink.as_ref(), "onUnlink")?,
            result: c.opt(mapping.result.as_ref(), "result")?,
            config: mapping.clone(),
        })
    }

    /// The mapping's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The typed configuration the mapping was built from.
    pub fn config(&self) -> &Mapping {
        &self.config
    }

    /// Whether a correlation query or script exists for `qualifier` (the first input of
    /// [`crate::correlation_skipped`]).
    pub fn has_correlation(&self, qualifier: &str) -> bool {
        match &self.correlation {
            None => false,
            Some(CompiledCorrelation::Script(_)) => true,
            Some(CompiledCorrelation::Queries(q)) => q.iter().any(|(lq, _)| lq == qualifier),
        }
    }

    pub(crate) fn bad_result(&self, place: &str, message: impl Into<String>) -> MappingError {
        MappingError::BadScriptResult {
            mapping: self.config.name.clone(),
            place: place.to_string(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn compiled_mapping_is_send_and_sync() {
        assert_send_sync::<CompiledMapping>();
    }
}
