//! The shape limits of what the API stores and queries (docs/SECURITY.md): the nesting depth and
//! the size of an object, checked on the result of every write (a PATCH's result included, so
//! that no request can store an object that later reads or queries cannot parse), and the
//! number of sort keys and filter terms a query may hold.
//!
//! The checks are iterative, never recursive, so that a hostile value cannot overflow the stack
//! while it is being measured.

use crate::error::{ApiError, ApiResult};
use crate::state::Limits;
use idsync_core::{Filter, QueryRequest};
use serde_json::Value;

/// The deepest nesting JSON parsers accept (serde_json's recursion limit: an object whose
/// arrays and objects nest this many times cannot be parsed back).
pub const PARSER_DEPTH: usize = 128;

/// Refuses `object` when its arrays and objects nest `max_json_depth` times or more, or when
/// its compact JSON is larger than `max_object_bytes`.
pub fn check_object(object: &Value, limits: &Limits) -> ApiResult<()> {
    let max_depth = limits.max_json_depth.min(PARSER_DEPTH);
    let depth = depth(object, max_depth);
    if depth >= max_depth {
        return Err(ApiError::BadRequest(format!(
            "the object nests {depth} or more levels deep; it must nest fewer than {max_depth}"
        )));
    }
    let size = json_size(object, limits.max_object_bytes);
    if size > limits.max_object_bytes {
        return Err(ApiError::BadRequest(format!(
            "the object is larger than the limit of {} bytes",
            limits.max_object_bytes
        )));
    }
    Ok(())
}

/// The nesting depth of `v` (a scalar is 0, `{}` 1, `{"a":[]}` 2), counted up to `stop`.
pub fn depth(v: &Value, stop: usize) -> usize {
    let mut deepest = 0;
    let mut todo: Vec<(&Value, usize)> = vec![(v, 0)];
    while let Some((v, d)) = todo.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(a) => Box::new(a.iter()),
            Value::Object(m) => Box::new(m.values()),
            _ => continue,
        };
        let here = d + 1;
        deepest = deepest.max(here);
        if deepest >= stop {
            return deepest;
        }
        todo.extend(children.map(|c| (c, here)));
    }
    deepest
}

/// The size of `v` as compact JSON, counted up to just past `stop` (the writer gives up there,
/// so measuring a huge value costs no more than the limit).
pub fn json_size(v: &Value, stop: usize) -> usize {
    struct Count {
        n: usize,
        stop: usize,
    }
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.n += buf.len();
            if self.n > self.stop {
                return Err(std::io::Error::other("over the limit"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count { n: 0, stop };
    // serde_json's writer recurses, but only over values that were parsed (and so are less
    // than the parser's depth) or that passed `depth` first.
    let _ = serde_json::to_writer(&mut c, v);
    c.n
}

/// Refuses a query with more sort keys or filter terms than the limits allow.
pub fn check_query(req: &QueryRequest, limits: &Limits) -> ApiResult<()> {
    if req.sort_keys.len() > limits.max_sort_keys {
        return Err(ApiError::BadRequest(format!(
            "_sortKeys names {} keys; the limit is {}",
            req.sort_keys.len(),
            limits.max_sort_keys
        )));
    }
    if let Some(f) = &req.filter {
        let n = filter_terms(f, limits.max_filter_terms.saturating_add(1));
        if n > limits.max_filter_terms {
            return Err(ApiError::BadRequest(format!(
                "the _queryFilter holds more than {} terms",
                limits.max_filter_terms
            )));
        }
    }
    Ok(())
}

/// The number of nodes of a filter (conditions and operators), counted up to `stop`.
pub fn filter_terms(f: &Filter, stop: usize) -> usize {
    let mut n = 0;
    let mut todo = vec![f];
    while let Some(f) = todo.pop() {
        n += 1;
        if n >= stop {
            return n;
        }
        match f {
            Filter::And(parts) | Filter::Or(parts) => todo.extend(parts.iter()),
            Filter::Not(inner) => todo.push(inner),
            _ => {}
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(levels: usize) -> Value {
        let mut v = json!("leaf");
        for _ in 0..levels {
            v = json!({ "a": v });
        }
        v
    }

    #[test]
    fn depth_counts_containers() {
        assert_eq!(depth(&json!(1), 200), 0);
        assert_eq!(depth(&json!({}), 200), 1);
        assert_eq!(depth(&json!({"a": [1, {"b": []}]}), 200), 4);
        assert_eq!(depth(&nested(1000), 130), 130);
    }

    #[test]
    fn what_passes_the_check_parses_back() {
        let limits = Limits::default();
        let deepest = nested(PARSER_DEPTH - 1);
        check_object(&deepest, &limits).unwrap();
        let text = serde_json::to_string(&deepest).unwrap();
        serde_json::from_str::<Value>(&text).unwrap();
        let too_deep = nested(PARSER_DEPTH);
        assert!(check_object(&too_deep, &limits).is_err());
        // The parser indeed refuses that one: without the check it would be unreadable.
        let text = serde_json::to_string(&too_deep).unwrap();
        assert!(serde_json::from_str::<Value>(&text).is_err());
    }

    #[test]
    fn size_stops_counting_past_the_limit() {
        let big = json!({"a": "x".repeat(1000)});
        assert_eq!(json_size(&big, 10_000), 1008);
        assert!(json_size(&big, 100) <= 100 + 1008);
        let limits = Limits {
            max_object_bytes: 500,
            ..Limits::default()
        };
        assert!(check_object(&big, &limits).is_err());
    }
}
