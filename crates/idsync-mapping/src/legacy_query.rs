//! IDM's older correlation query form: a correlation script (or `correlationQuery`) that returns
//! `{"query": {"Equals": {"field": "uid", "values": ["jdoe"]}}}` — OpenICF's JSON filter, which
//! IDM's samples of that generation (`sample2b`, `sample2c`'s `ldapBackCorrelationQuery.js`) still
//! ship. It is read here into the CREST filter the correlation runs (docs/configuration.md#mappings).
//!
//! Operators (names in any case): `Equals` (each value equal — for a multi-valued attribute, all
//! present), `ContainsAllValues` (the same), `StartsWith`, `Contains`, `GreaterThan`,
//! `GreaterThanOrEqual`, `LessThan`, `LessThanOrEqual` (the first value), `And`/`Or` (a list of
//! expressions, or `{"left", "right"}`), `Not`. `EndsWith` has no CREST equivalent and is refused.

use idsync_core::JsonPointer;
use idsync_core::filter::{CompareOp, Filter};
use serde_json::Value;

/// The CREST filter of an OpenICF query expression, or why it is not one.
pub fn to_filter(expr: &Value) -> Result<Filter, String> {
    let Value::Object(map) = expr else {
        return Err(format!("a query expression must be an object, got {expr}"));
    };
    let mut entries = map.iter();
    let (Some((op, operand)), None) = (entries.next(), entries.next()) else {
        return Err(format!(
            "a query expression has exactly one operator, got {}",
            Value::Object(map.clone())
        ));
    };
    let op = op.to_ascii_lowercase();
    match op.as_str() {
        "and" | "or" => {
            let parts: Vec<&Value> = match operand {
                Value::Array(items) => items.iter().collect(),
                Value::Object(m) if m.contains_key("left") && m.contains_key("right") => {
                    vec![&m["left"], &m["right"]]
                }
                other => return Err(format!("{op} needs a list of expressions, got {other}")),
            };
            let filters = parts
                .into_iter()
                .map(to_filter)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if op == "and" {
                Filter::And(filters)
            } else {
                Filter::Or(filters)
            })
        }
        "not" => Ok(Filter::Not(Box::new(to_filter(operand)?))),
        "equals" | "containsallvalues" => {
            let (field, values) = field_values(&op, operand)?;
            let terms: Vec<Filter> = values
                .iter()
                .map(|v| compare(&field, CompareOp::Eq, v))
                .collect();
            Ok(match <[Filter; 1]>::try_from(terms) {
                Ok([one]) => one,
                Err(terms) if terms.is_empty() => Filter::False,
                Err(terms) => Filter::And(terms),
            })
        }
        "startswith" | "contains" | "greaterthan" | "greaterthanorequal" | "lessthan"
        | "lessthanorequal" => {
            let cop = match op.as_str() {
                "startswith" => CompareOp::Sw,
                "contains" => CompareOp::Co,
                "greaterthan" => CompareOp::Gt,
                "greaterthanorequal" => CompareOp::Ge,
                "lessthan" => CompareOp::Lt,
                _ => CompareOp::Le,
            };
            let (field, values) = field_values(&op, operand)?;
            match values.first() {
                Some(v) => Ok(compare(&field, cop, v)),
                None => Err(format!("{op} needs a value")),
            }
        }
        "endswith" => Err("EndsWith has no query filter equivalent: return a _queryFilter".into()),
        other => Err(format!("unknown query operator \"{other}\"")),
    }
}

/// `{"field": F, "values": [...]}` (a single `"value"` is accepted too).
fn field_values<'v>(op: &str, operand: &'v Value) -> Result<(String, Vec<&'v Value>), String> {
    let field = operand
        .get("field")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{op} needs a \"field\""))?
        .to_string();
    let values = match (operand.get("values"), operand.get("value")) {
        (Some(Value::Array(items)), _) => items.iter().collect(),
        (Some(single), _) | (None, Some(single)) => vec![single],
        (None, None) => Vec::new(),
    };
    Ok((field, values))
}

/// `field op value`; a value the filter language cannot hold (null, a list, an object) matches
/// nothing, as a correlation on an empty source value finds no one.
fn compare(field: &str, op: CompareOp, value: &Value) -> Filter {
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Filter::Compare {
            field: JsonPointer::parse(field),
            op,
            value: value.clone(),
        },
        _ => Filter::False,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(expr: Value) -> String {
        to_filter(&expr).unwrap().to_string()
    }

    #[test]
    fn idm_samples_expressions_read_as_crest_filters() {
        assert_eq!(
            text(json!({"Equals": {"field": "uid", "values": ["jdoe"]}})),
            r#"/uid eq "jdoe""#
        );
        assert_eq!(
            text(json!({"AND": [
                {"Equals": {"field": "uid", "values": ["jdoe"]}},
                {"StartsWith": {"field": "mail", "values": ["j"]}}
            ]})),
            r#"/uid eq "jdoe" and /mail sw "j""#
        );
        assert_eq!(
            text(
                json!({"Or": {"left": {"GreaterThan": {"field": "n", "values": [3]}},
                               "right": {"Not": {"Contains": {"field": "cn", "values": ["x"]}}}}})
            ),
            r#"/n gt 3 or !(/cn co "x")"#
        );
        assert_eq!(
            to_filter(&json!({"Equals": {"field": "uid", "values": [null]}})).unwrap(),
            Filter::False
        );
        assert!(to_filter(&json!({"EndsWith": {"field": "uid", "values": ["x"]}})).is_err());
        assert!(to_filter(&json!({"Frob": {}})).is_err());
    }
}
