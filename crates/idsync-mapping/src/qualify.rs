//! Qualification (`validSource`, `sourceCondition`, `validTarget`), link qualifiers and
//! correlation queries (docs/configuration.md#mappings). Owns evaluating those scripts and parsing what they
//! return; it never runs a query (the engine runs the returned [`Correlation`] on the target).

use crate::compiled::{CompiledCorrelation, CompiledMapping, CompiledQualifiers};
use crate::error::Result;
use idsync_core::{CompareOp, Filter, JsonPointer};
use idsync_script::Bindings;
use serde_json::Value;

/// What correlation asks the engine to do for one source and qualifier.
#[derive(Debug, Clone, PartialEq)]
pub enum Correlation {
    /// Run this filter on the target set; the results are the candidates.
    ///
    /// A `correlationQuery` returning `{_queryFilter}` is parsed as is. One returning
    /// `{_queryId, params...}` is translated, because idsync has no stored queries:
    /// `query-all`/`query-all-ids` → `true`; `for-<field>` with exactly one parameter →
    /// `<field> eq <value>` (IDM's `for-userName` with `uid`); any other id → the `and` of
    /// `<param> eq <value>` over its parameters (a null parameter matches nothing).
    Query(Filter),
    /// The candidates a `correlationScript` returned, each an object with a string `_id`. An
    /// object with any key not starting with `_` is a full object (docs/configuration.md#mappings); otherwise
    /// the engine reads the target by id when it needs it.
    Candidates(Vec<Value>),
}

impl Correlation {
    /// The ids of script candidates (a query's ids are the engine's query results).
    pub fn candidate_ids(&self) -> Vec<&str> {
        match self {
            Correlation::Query(_) => Vec::new(),
            Correlation::Candidates(c) => c
                .iter()
                .filter_map(|v| v.get("_id").and_then(Value::as_str))
                .collect(),
        }
    }
}

/// Whether a correlation result holds a whole object, not just its id (docs/configuration.md#mappings).
pub fn is_full_object(candidate: &Value) -> bool {
    candidate
        .as_object()
        .is_some_and(|m| m.keys().any(|k| !k.starts_with('_')))
}

impl CompiledMapping {
    /// `validSource` alone (the target phase and the delete branch use only this). True when
    /// not configured; a non-boolean result is an error.
    pub fn valid_source(&self, source: &Value, link_qualifier: &str) -> Result<bool> {
        match &self.valid_source {
            None => Ok(true),
            Some(s) => Ok(s.eval_bool(
                &Bindings::new()
                    .with("source", source)
                    .with_owned("linkQualifier", Value::String(link_qualifier.into())),
            )?),
        }
    }

    /// `validSource` AND `sourceCondition` (the source phase and implicit sync). The filter form
    /// of `sourceCondition` sees `{"source": <obj>, "linkQualifier": q}`.
    pub fn source_qualifies(&self, source: &Value, link_qualifier: &str) -> Result<bool> {
        if !self.valid_source(source, link_qualifier)? {
            return Ok(false);
        }
        match &self.source_condition {
            None => Ok(true),
            Some(c) => {
                let qualifier = Value::String(link_qualifier.into());
                c.holds(&[
                    ("source", Some(source)),
                    ("linkQualifier", Some(&qualifier)),
                ])
            }
        }
    }

    /// `validTarget`: true when not configured; a non-boolean result is an error.
    pub fn target_valid(&self, target: &Value, link_qualifier: &str) -> Result<bool> {
        match &self.valid_target {
            None => Ok(true),
            Some(s) => Ok(s.eval_bool(
                &Bindings::new()
                    .with("target", target)
                    .with_owned("linkQualifier", Value::String(link_qualifier.into())),
            )?),
        }
    }

    /// The link qualifiers for `object` (the source, or `None` in the target phase). A script
    /// sees `mapping` (the name), `object`, `oldValue` and `returnAll`, and must return a list
    /// of strings; with `return_all` it must list every qualifier.
    pub fn link_qualifiers(
        &self,
        object: Option<&Value>,
        old_value: Option<&Value>,
        return_all: bool,
    ) -> Result<Vec<String>> {
        let script = match &self.link_qualifiers {
            CompiledQualifiers::List(l) => return Ok(l.clone()),
            CompiledQualifiers::Script(s) => s,
        };
        let null = Value::Null;
        let result = script.eval(
            &Bindings::new()
                .with_owned("mapping", Value::String(self.config.name.clone()))
                .with("object", object.unwrap_or(&null))
                .with("oldValue", old_value.unwrap_or(&null))
                .with_owned("returnAll", Value::Bool(return_all)),
        )?;
        let bad = || {
            self.bad_result(
                "linkQualifiers",
                format!("expected a list of strings, got {result}"),
            )
        };
        let list = result.as_array().ok_or_else(bad)?;
        list.iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(bad))
            .collect()
    }

    /// The correlation to run for `source` and `link_qualifier`, or `None` when the mapping has
    /// none for that qualifier (correlation is then skipped, docs/configuration.md#mappings).
    pub fn correlation(&self, source: &Value, link_qualifier: &str) -> Result<Option<Correlation>> {
        let bindings = Bindings::new()
            .with("source", source)
            .with_owned("linkQualifier", Value::String(link_qualifier.into()));
        match &self.correlation {
            None => Ok(None),
            Some(CompiledCorrelation::Queries(queries)) => {
                let Some((_, script)) = queries.iter().find(|(q, _)| q == link_qualifier) else {
                    return Ok(None);
                };
                let place = format!("correlationQuery ({link_qualifier})");
                let result = script.eval(&bindings)?;
                self.parse_query(&place, result)
                    .map(|f| Some(Correlation::Query(f)))
            }
            Some(CompiledCorrelation::Script(script)) => {
                let result = script.eval(&bindings)?;
                self.parse_candidates(result)
                    .map(|c| Some(Correlation::Candidates(c)))
            }
        }
    }

    fn parse_query(&self, place: &str, result: Value) -> Result<Filter> {
        let Value::Object(mut params) = result else {
            return Err(self.bad_result(place, format!("expected a query map, got {result}")));
        };
        if let Some(text) = params.get("_queryFilter") {
            let text = text
                .as_str()
                .ok_or_else(|| self.bad_result(place, "_queryFilter must be a string"))?;
            return idsync_core::filter::parse(text)
                .map_err(|e| self.bad_result(place, format!("_queryFilter {text:?}: {e}")));
        }
        if let Some(expr) = params.get("query") {
            // IDM's older form: an OpenICF query expression.
            return crate::legacy_query::to_filter(expr)
                .map_err(|e| self.bad_result(place, format!("query {expr}: {e}")));
        }
        if params.contains_key("_queryExpression") {
            return Err(self.bad_result(
                place,
                "_queryExpression (native query) is not supported; return a _queryFilter",
            ));
        }
        let Some(Value::String(query_id)) = params.shift_remove("_queryId") else {
            return Err(self.bad_result(
                place,
                "expected _queryFilter, _queryId or query (IDM's older query expression)",
            ));
        };
        // Paging and field parameters are not match criteria.
        params.retain(|k, _| !k.starts_with('_'));
        if query_id == "query-all" || query_id == "query-all-ids" {
            return Ok(Filter::True);
        }
        let single_field = query_id.strip_prefix("for-").filter(|_| params.len() == 1);
        let terms: Vec<Filter> = match single_field {
            Some(field) => params.values().map(|v| eq(field, v)).collect(),
            None => params.iter().map(|(k, v)| eq(k, v)).collect(),
        };
        match <[Filter; 1]>::try_from(terms) {
            Ok([one]) => Ok(one),
            Err(terms) if terms.is_empty() => Err(self.bad_result(
                place,
                format!("_queryId {query_id:?} has no parameters to correlate on"),
            )),
            Err(terms) => Ok(Filter::And(terms)),
        }
    }

    fn parse_candidates(&self, result: Value) -> Result<Vec<Value>> {
        let place = "correlationScript";
        let list = match result {
            Value::Null => return Ok(Vec::new()),
            Value::Array(list) => list,
            other => {
                return Err(
                    self.bad_result(place, format!("expected a list of objects, got {other}"))
                );
            }
        };
        for candidate in &list {
            if !candidate.get("_id").is_some_and(Value::is_string) {
                return Err(self.bad_result(
                    place,
                    format!("candidate without a string _id: {candidate}"),
                ));
            }
        }
        Ok(list)
    }
}

/// `field eq value`; a value the filter language cannot compare (null, arrays, objects) matches
/// nothing rather than everything.
fn eq(field: &str, value: &Value) -> Filter {
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Filter::Compare {
            field: JsonPointer::parse(field),
            op: CompareOp::Eq,
            value: value.clone(),
        },
        Value::Null | Value::Array(_) | Value::Object(_) => Filter::False,
    }
}
