//! JSON pointers (RFC 6901) with CREST's leniency: the leading `/` is optional.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::fmt;

/// A parsed JSON pointer. The empty pointer addresses the whole value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct JsonPointer {
    tokens: Vec<String>,
}

/// Why a value could not be written at a pointer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointerError {
    #[error("cannot write to the root pointer")]
    Root,
    #[error("cannot write \"{pointer}\": \"{at}\" is not an object")]
    NotAnObject { pointer: String, at: String },
}

impl JsonPointer {
    /// The pointer to the whole value.
    pub fn root() -> Self {
        Self::default()
    }

    /// Parses `"/a/b"`, `"a/b"` or `""`. `~1` decodes to `/` and `~0` to `~`.
    pub fn parse(s: &str) -> Self {
        let body = s.strip_prefix('/').unwrap_or(s);
        if body.is_empty() {
            return Self::root();
        }
        let tokens = body
            .split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect();
        Self { tokens }
    }

    pub fn from_tokens<I: IntoIterator<Item = S>, S: Into<String>>(tokens: I) -> Self {
        Self {
            tokens: tokens.into_iter().map(Into::into).collect(),
        }
    }

    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    pub fn is_root(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The first token, e.g. `mail` for `/mail/0`.
    pub fn first(&self) -> Option<&str> {
        self.tokens.first().map(String::as_str)
    }

    /// A pointer with `token` appended.
    pub fn child(&self, token: impl Into<String>) -> Self {
        let mut tokens = self.tokens.clone();
        tokens.push(token.into());
        Self { tokens }
    }

    /// The value at this pointer, if any. Array elements are addressed by index.
    pub fn get<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        self.tokens.iter().try_fold(value, |v, t| match v {
            Value::Object(m) => m.get(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        })
    }

    /// Writes `new` at this pointer, creating intermediate objects (docs/configuration.md#mappings step 5).
    pub fn set(&self, value: &mut Value, new: Value) -> Result<(), PointerError> {
        let Some((last, parents)) = self.tokens.split_last() else {
            return Err(PointerError::Root);
        };
        let mut cur = value;
        for (i, t) in parents.iter().enumerate() {
            if cur.is_null() {
                *cur = Value::Object(Map::new());
            }
            cur = match cur {
                Value::Object(m) => m
                    .entry(t.clone())
                    .or_insert_with(|| Value::Object(Map::new())),
                Value::Array(a) => match t.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                    Some(v) => v,
                    None => return Err(self.not_object(i)),
                },
                _ => return Err(self.not_object(i)),
            };
        }
        if cur.is_null() {
            *cur = Value::Object(Map::new());
        }
        match cur {
            Value::Object(m) => {
                m.insert(last.clone(), new);
                Ok(())
            }
            Value::Array(a) if last == "-" => {
                a.push(new);
                Ok(())
            }
            Value::Array(a) => match last.parse::<usize>().ok().filter(|i| *i < a.len()) {
                Some(i) => {
                    a[i] = new;
                    Ok(())
                }
                None => Err(self.not_object(parents.len())),
            },
            _ => Err(self.not_object(parents.len())),
        }
    }

    /// Removes and returns the value at this pointer.
    pub fn remove(&self, value: &mut Value) -> Option<Value> {
        let (last, parents) = self.tokens.split_last()?;
        let parent = JsonPointer::from_tokens(parents.iter().cloned());
        let mut cur = value;
        for t in parent.tokens() {
            cur = match cur {
                Value::Object(m) => m.get_mut(t)?,
                Value::Array(a) => a.get_mut(t.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        match cur {
            Value::Object(m) => m.shift_remove(last),
            Value::Array(a) => {
                let i = last.parse::<usize>().ok().filter(|i| *i < a.len())?;
                Some(a.remove(i))
            }
            _ => None,
        }
    }

    fn not_object(&self, depth: usize) -> PointerError {
        PointerError::NotAnObject {
            pointer: self.to_string(),
            at: JsonPointer::from_tokens(self.tokens[..depth].iter().cloned()).to_string(),
        }
    }
}

impl fmt::Display for JsonPointer {
    /// The canonical form: a leading `/` and RFC 6901 escapes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.tokens {
            write!(f, "/{}", t.replace('~', "~0").replace('/', "~1"))?;
        }
        Ok(())
    }
}

impl Serialize for JsonPointer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for JsonPointer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn leading_slash_is_optional() {
        assert_eq!(JsonPointer::parse("a/b"), JsonPointer::parse("/a/b"));
        assert_eq!(JsonPointer::parse("/a/b").to_string(), "/a/b");
        assert!(JsonPointer::parse("").is_root());
        assert!(JsonPointer::parse("/").is_root());
    }

    #[test]
    fn escapes_round_trip() {
        let p = JsonPointer::parse("/a~1b/c~0d");
        assert_eq!(p.tokens(), ["a/b", "c~d"]);
        assert_eq!(p.to_string(), "/a~1b/c~0d");
    }

    #[test]
    fn get_reads_objects_and_arrays() {
        let v = json!({"a": {"b": [10, {"c": "x"}]}});
        assert_eq!(JsonPointer::parse("/a/b/0").get(&v), Some(&json!(10)));
        assert_eq!(JsonPointer::parse("/a/b/1/c").get(&v), Some(&json!("x")));
        assert_eq!(JsonPointer::parse("/a/x").get(&v), None);
        assert_eq!(JsonPointer::root().get(&v), Some(&v));
    }

    #[test]
    fn set_creates_intermediate_objects_and_writes_nulls() {
        let mut v = json!({});
        JsonPointer::parse("/name/given")
            .set(&mut v, json!("Ann"))
            .unwrap();
        JsonPointer::parse("/phone")
            .set(&mut v, Value::Null)
            .unwrap();
        assert_eq!(v, json!({"name": {"given": "Ann"}, "phone": null}));
    }

    #[test]
    fn set_refuses_root_and_scalars() {
        let mut v = json!({"a": 1});
        assert_eq!(
            JsonPointer::root().set(&mut v, json!(1)),
            Err(PointerError::Root)
        );
        assert!(JsonPointer::parse("/a/b").set(&mut v, json!(1)).is_err());
    }

    #[test]
    fn remove_takes_the_value_out() {
        let mut v = json!({"a": {"b": 1, "c": 2}});
        assert_eq!(JsonPointer::parse("/a/b").remove(&mut v), Some(json!(1)));
        assert_eq!(v, json!({"a": {"c": 2}}));
    }
}
