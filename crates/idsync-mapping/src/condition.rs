//! Conditions (docs/configuration.md#mappings): a filter evaluated in memory, or a script whose variables are the
//! top-level keys of the condition content. Owns evaluating them against a content made of named
//! parts (`object`, `target`, `linkQualifier`, ...) WITHOUT assembling those parts into one JSON
//! object: that would clone the source (and the target) once per condition per object, which
//! was most of the per-object cost of a recon.

use crate::error::Result;
use idsync_core::{Filter, JsonPointer};
use idsync_script::{Bindings, Script};
use serde_json::{Map, Value};

/// The named parts a condition sees, borrowed. A part that is absent (e.g. `oldSource` in recon)
/// is not a key of the content at all.
pub(crate) type Content<'a> = [(&'a str, Option<&'a Value>)];

/// A filter split at its first pointer token, so each leaf runs on one borrowed part.
#[derive(Debug, Clone)]
pub(crate) enum Scoped {
    True,
    False,
    And(Vec<Scoped>),
    Or(Vec<Scoped>),
    Not(Box<Scoped>),
    /// A comparison on the part named `part`, with the part's name stripped from its field.
    Leaf {
        part: String,
        leaf: Filter,
    },
}

impl Scoped {
    /// `None` when a leaf addresses the content root itself (`"" pr`): such a filter is
    /// evaluated on an assembled content instead.
    fn from_filter(f: &Filter) -> Option<Scoped> {
        let split = |field: &JsonPointer| {
            let (first, rest) = field.tokens().split_first()?;
            Some((
                first.clone(),
                JsonPointer::from_tokens(rest.iter().cloned()),
            ))
        };
        Some(match f {
            Filter::True => Scoped::True,
            Filter::False => Scoped::False,
            Filter::And(items) => Scoped::And(
                items
                    .iter()
                    .map(Scoped::from_filter)
                    .collect::<Option<_>>()?,
            ),
            Filter::Or(items) => Scoped::Or(
                items
                    .iter()
                    .map(Scoped::from_filter)
                    .collect::<Option<_>>()?,
            ),
            Filter::Not(inner) => Scoped::Not(Box::new(Scoped::from_filter(inner)?)),
            Filter::Compare { field, op, value } => {
                let (part, field) = split(field)?;
                Scoped::Leaf {
                    part,
                    leaf: Filter::Compare {
                        field,
                        op: *op,
                        value: value.clone(),
                    },
                }
            }
            Filter::Present { field } => {
                let (part, field) = split(field)?;
                Scoped::Leaf {
                    part,
                    leaf: Filter::Present { field },
                }
            }
            Filter::Extended { field, op, value } => {
                let (part, field) = split(field)?;
                Scoped::Leaf {
                    part,
                    leaf: Filter::Extended {
                        field,
                        op: op.clone(),
                        value: value.clone(),
                    },
                }
            }
        })
    }

    /// Same result as the original filter on the assembled content: a pointer lookup is a fold
    /// over tokens, so looking the first token up in the parts and the rest in the part is
    /// equivalent; a leaf whose part is absent resolves nothing, which every leaf kind answers
    /// with false (docs/rest.md#the-query-language).
    fn matches(&self, content: &Content<'_>) -> bool {
        match self {
            Scoped::True => true,
            Scoped::False => false,
            Scoped::And(items) => items.iter().all(|s| s.matches(content)),
            Scoped::Or(items) => items.iter().any(|s| s.matches(content)),
            Scoped::Not(inner) => !inner.matches(content),
            Scoped::Leaf { part, leaf } => content
                .iter()
                .find(|(name, _)| name == part)
                .and_then(|(_, v)| *v)
                .is_some_and(|v| leaf.matches(v)),
        }
    }
}

/// A compiled condition.
#[derive(Debug, Clone)]
pub(crate) enum CompiledCondition {
    /// Boxed: a filter and its scoped form are much larger than a script handle.
    Filter(Box<FilterCondition>),
    Script(Script),
}

/// A filter condition and its scoped form (`None`: evaluate on an assembled content).
#[derive(Debug, Clone)]
pub(crate) struct FilterCondition {
    filter: Filter,
    scoped: Option<Scoped>,
}

impl CompiledCondition {
    pub(crate) fn filter(filter: &Filter) -> Self {
        CompiledCondition::Filter(Box::new(FilterCondition {
            scoped: Scoped::from_filter(filter),
            filter: filter.clone(),
        }))
    }

    /// Whether the condition holds for `content`. A script must answer a boolean.
    pub(crate) fn holds(&self, content: &Content<'_>) -> Result<bool> {
        match self {
            CompiledCondition::Filter(f) => match &f.scoped {
                Some(s) => Ok(s.matches(content)),
                None => {
                    let assembled: Map<String, Value> = content
                        .iter()
                        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v.clone())))
                        .collect();
                    Ok(f.filter.matches(&Value::Object(assembled)))
                }
            },
            CompiledCondition::Script(s) => {
                let mut b = Bindings::new();
                for (k, v) in content {
                    if let Some(v) = v {
                        b.set(*k, v);
                    }
                }
                Ok(s.eval_bool(&b)?)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The scoped evaluation agrees with evaluating the original filter on the assembled
    /// object, for every filter shape, including absent parts and root-field fallbacks.
    #[test]
    fn scoped_evaluation_equals_assembled_evaluation() {
        let object = json!({"dept": "eng", "roles": ["a", "b"], "n": 3, "nested": {"k": "v"}});
        let target = json!({"mail": null});
        let q = json!("emp");
        let content: Vec<(&str, Option<&Value>)> = vec![
            ("object", Some(&object)),
            ("target", Some(&target)),
            ("linkQualifier", Some(&q)),
            ("oldSource", None),
        ];
        let assembled = json!({"object": object, "target": target, "linkQualifier": "emp"});
        let filters = [
            r#"/object/dept eq "ENG""#,
            r#"/object/roles eq "b""#,
            "/object/n gt 2 and /object/n lt 3",
            r#"/object/nested/k sw "v" or /linkQualifier eq "x""#,
            r#"/linkQualifier eq "emp""#,
            "/target/mail pr",
            "!(/target/mail pr)",
            "/oldSource pr",
            "!(/oldSource/x pr)",
            r#"/oldSource/x eq "y""#,
            r#"/object/dept ne "x""#,
            "/object pr",
            "/missing/x pr",
            "true",
            "false",
            r#"/object/dept eq "eng" and !(/object/n eq 4 or /linkQualifier co "m")"#,
        ];
        for text in filters {
            let f: Filter = text.parse().unwrap();
            let c = CompiledCondition::filter(&f);
            assert!(
                matches!(&c, CompiledCondition::Filter(f) if f.scoped.is_some()),
                "{text}"
            );
            assert_eq!(c.holds(&content).unwrap(), f.matches(&assembled), "{text}");
        }
    }

    #[test]
    fn a_root_field_falls_back_to_the_assembled_content() {
        let f: Filter = r#"/ pr"#.parse().unwrap();
        let c = CompiledCondition::filter(&f);
        assert!(matches!(&c, CompiledCondition::Filter(f) if f.scoped.is_none()));
        let q = json!("emp");
        assert!(c.holds(&[("linkQualifier", Some(&q))]).unwrap());
    }
}
