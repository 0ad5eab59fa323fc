//! Property mapping (docs/configuration.md#mappings): per property, in list order, condition → value →
//! transform → default → write. Owns only building target values from a source; it never
//! decides whether a target is written.

use crate::compiled::{CompiledMapping, CompiledProperty};
use crate::error::{MappingError, Result};
use idsync_script::Bindings;
use serde_json::Value;

/// What property conditions and transforms may see besides the source and the target.
#[derive(Debug, Clone, Copy)]
pub struct PropertyContext<'a> {
    pub link_qualifier: &'a str,
    /// The source before the change: implicit-sync updates and deletes only, never recon.
    pub old_source: Option<&'a Value>,
    /// The target before this mapping ran (UPDATE), if any.
    pub old_target: Option<&'a Value>,
}

impl<'a> PropertyContext<'a> {
    /// A context with only a link qualifier (recon CREATE).
    pub fn new(link_qualifier: &'a str) -> Self {
        Self {
            link_qualifier,
            old_source: None,
            old_target: None,
        }
    }
}

impl CompiledMapping {
    /// Applies every property mapping of the mapping to `target` (docs/configuration.md#mappings). Properties
    /// whose condition is false leave `target` untouched; a value that stays null is written as
    /// an explicit null.
    pub fn map_properties(
        &self,
        source: &Value,
        target: &mut Value,
        ctx: &PropertyContext<'_>,
    ) -> Result<()> {
        for p in &self.properties {
            self.map_property(p, source, target, ctx)?;
        }
        Ok(())
    }

    fn map_property(
        &self,
        p: &CompiledProperty,
        source: &Value,
        target: &mut Value,
        ctx: &PropertyContext<'_>,
    ) -> Result<()> {
        if let Some(condition) = &p.condition {
            let qualifier = Value::String(ctx.link_qualifier.into());
            let content = [
                ("object", Some(source)),
                ("target", Some(&*target)),
                ("linkQualifier", Some(&qualifier)),
                ("oldSource", ctx.old_source),
                ("oldTarget", ctx.old_target),
            ];
            if !condition.holds(&content)? {
                return Ok(());
            }
        }
        // `source` absent: no value of its own, but a transform sees the whole object.
        let picked = p
            .source
            .as_ref()
            .map(|ptr| ptr.get(source).unwrap_or(&Value::Null));
        let mut value = match &p.transform {
            Some(transform) => {
                let qualifier = Value::String(ctx.link_qualifier.to_string());
                let b = Bindings::new()
                    .with("source", picked.unwrap_or(source))
                    .with_owned("linkQualifier", qualifier);
                transform.eval(&b)?
            }
            None => picked.cloned().unwrap_or(Value::Null),
        };
        if value.is_null()
            && let Some(default) = &p.default
        {
            value = default.clone();
        }
        p.target
            .set(target, value)
            .map_err(|source| MappingError::PropertyWrite {
                mapping: self.config.name.clone(),
                target: p.target.to_string(),
                source,
            })
    }
}
