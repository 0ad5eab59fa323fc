//! CREST `_queryFilter` → RFC 4515 LDAP filter strings, with every assertion value escaped.
//!
//! Translation only: nothing here talks to a server. A filter that cannot be expressed in
//! LDAP is a `BadRequest`; we never fetch everything and filter in memory.

use super::config::{NAME_ATTR, ObjectTypeDef, UID_ATTR};
use crate::contract::{ConnectorError, ConnectorResult};
use base64::Engine as _;
use idsync_core::{CompareOp, Filter, JsonPointer};
use serde_json::Value;
use std::fmt::Write as _;

/// Resolves idsync property names to LDAP attributes for one object type.
#[derive(Debug, Clone, Copy)]
pub struct AttributeResolver<'a> {
    pub object_type: &'a ObjectTypeDef,
    pub uid_attribute: &'a str,
}

/// One resolved attribute: its LDAP name and whether values are base64 binary.
struct Resolved {
    attr: String,
    binary: bool,
}

impl AttributeResolver<'_> {
    fn resolve(&self, field: &JsonPointer) -> ConnectorResult<Resolved> {
        let tokens = field.tokens();
        let [name] = tokens else {
            return Err(ConnectorError::BadRequest(format!(
                "LDAP filters address top-level attributes only, not {field}"
            )));
        };
        if name == "_id" {
            return Ok(Resolved {
                attr: self.uid_attribute.to_owned(),
                binary: false,
            });
        }
        let (native, binary) = if self.object_type.properties.is_empty() {
            (name.as_str(), false)
        } else {
            let prop = self.object_type.property(name).ok_or_else(|| {
                ConnectorError::BadRequest(format!(
                    "{name} is not a property of object type {}",
                    self.object_type.name
                ))
            })?;
            (prop.native_name.as_str(), prop.binary)
        };
        let attr = match native {
            NAME_ATTR | "dn" => "entryDN".to_owned(),
            UID_ATTR => self.uid_attribute.to_owned(),
            other => other.to_owned(),
        };
        check_attribute_name(&attr)?;
        Ok(Resolved { attr, binary })
    }
}

/// Refuses anything that is not an attribute description, so that a property name can
/// never inject filter syntax.
pub fn check_attribute_name(attr: &str) -> ConnectorResult<()> {
    let ok = !attr.is_empty()
        && attr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(ConnectorError::BadRequest(format!(
            "{attr:?} is not an LDAP attribute name"
        )))
    }
}

/// Appends `bytes` escaped per RFC 4515: the specials `*()\` and NUL, and every non-ASCII
/// byte as `\xx`, so that the filter string is plain ASCII whatever the value.
pub fn escape_value_into(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        if matches!(b, b'*' | b'(' | b')' | b'\\') || !(0x20..0x80).contains(&b) {
            let _ = write!(out, "\\{b:02x}");
        } else {
            out.push(char::from(b));
        }
    }
}

pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_value_into(&mut out, s.as_bytes());
    out
}

fn assertion_bytes(value: &Value, binary: bool) -> ConnectorResult<Vec<u8>> {
    match value {
        Value::String(s) if binary => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| ConnectorError::BadRequest(format!("binary value is not base64: {e}"))),
        Value::String(s) => Ok(s.clone().into_bytes()),
        Value::Number(n) => Ok(n.to_string().into_bytes()),
        // LDAP Boolean syntax (RFC 4517 §3.3.3) is upper case.
        Value::Bool(b) => Ok(if *b {
            b"TRUE".to_vec()
        } else {
            b"FALSE".to_vec()
        }),
        other => Err(ConnectorError::BadRequest(format!(
            "cannot compare with {other} in LDAP"
        ))),
    }
}

/// Translates a CREST filter (`None` = `true`) for one object type.
pub fn to_ldap(
    filter: Option<&Filter>,
    resolver: &AttributeResolver<'_>,
) -> ConnectorResult<String> {
    let mut out = String::new();
    match filter {
        None => out.push_str("(objectClass=*)"),
        Some(f) => write_filter(&mut out, f, resolver)?,
    }
    Ok(out)
}

fn write_filter(out: &mut String, f: &Filter, r: &AttributeResolver<'_>) -> ConnectorResult<()> {
    match f {
        Filter::True => out.push_str("(objectClass=*)"),
        Filter::False => out.push_str("(!(objectClass=*))"),
        Filter::And(items) | Filter::Or(items) => {
            out.push_str(if matches!(f, Filter::And(_)) {
                "(&"
            } else {
                "(|"
            });
            for item in items {
                write_filter(out, item, r)?;
            }
            out.push(')');
        }
        Filter::Not(inner) => {
            out.push_str("(!");
            write_filter(out, inner, r)?;
            out.push(')');
        }
        Filter::Present { field } => {
            let a = r.resolve(field)?;
            let _ = write!(out, "({}=*)", a.attr);
        }
        Filter::Compare { field, op, value } => {
            let a = r.resolve(field)?;
            let v = assertion_bytes(value, a.binary)?;
            write_compare(out, &a.attr, *op, &v);
        }
        Filter::Extended { field, op, value } if op == "ew" => {
            let a = r.resolve(field)?;
            let v = assertion_bytes(value, a.binary)?;
            let _ = write!(out, "({}=*", a.attr);
            escape_value_into(out, &v);
            out.push(')');
        }
        Filter::Extended { op, .. } => {
            return Err(ConnectorError::BadRequest(format!(
                "the LDAP connector cannot evaluate the extended operator {op:?}"
            )));
        }
    }
    Ok(())
}

fn write_compare(out: &mut String, attr: &str, op: CompareOp, v: &[u8]) {
    let simple = |out: &mut String, sep: &str| {
        let _ = write!(out, "({attr}{sep}");
        escape_value_into(out, v);
        out.push(')');
    };
    match op {
        // An empty substring assertion is not valid LDAP: `co ""`/`sw ""` mean "present".
        CompareOp::Co | CompareOp::Sw if v.is_empty() => {
            let _ = write!(out, "({attr}=*)");
        }
        CompareOp::Eq => simple(out, "="),
        CompareOp::Ge => simple(out, ">="),
        CompareOp::Le => simple(out, "<="),
        CompareOp::Co => {
            let _ = write!(out, "({attr}=*");
            escape_value_into(out, v);
            out.push_str("*)");
        }
        CompareOp::Sw => {
            let _ = write!(out, "({attr}=");
            escape_value_into(out, v);
            out.push_str("*)");
        }
        CompareOp::Gt | CompareOp::Lt => {
            out.push_str("(&");
            simple(out, if op == CompareOp::Gt { ">=" } else { "<=" });
            out.push_str("(!");
            simple(out, "=");
            out.push_str("))");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(text: &str) -> ConnectorResult<String> {
        let ty = ObjectTypeDef::parse_all(None).unwrap().remove(0);
        let r = AttributeResolver {
            object_type: &ty,
            uid_attribute: "entryUUID",
        };
        let f: Filter = text.parse().unwrap();
        to_ldap(Some(&f), &r)
    }

    #[test]
    fn operators_and_escaping() {
        assert_eq!(
            translate(r#"uid eq "a*b(c)d\\e""#).unwrap(),
            r"(uid=a\2ab\28c\29d\5ce)"
        );
        assert_eq!(translate(r#"cn co "é""#).unwrap(), r"(cn=*\c3\a9*)");
        assert_eq!(translate(r#"cn sw "x""#).unwrap(), "(cn=x*)");
        assert_eq!(translate(r#"cn gt "m""#).unwrap(), "(&(cn>=m)(!(cn=m)))");
        assert_eq!(translate(r#"cn lt "m""#).unwrap(), "(&(cn<=m)(!(cn=m)))");
        assert_eq!(translate(r#"_id eq "x""#).unwrap(), "(entryUUID=x)");
        assert_eq!(translate(r#"dn eq "x""#).unwrap(), "(entryDN=x)");
        assert_eq!(translate("true").unwrap(), "(objectClass=*)");
        assert_eq!(translate("false").unwrap(), "(!(objectClass=*))");
        assert_eq!(
            translate(r#"!(a pr) or b eq 1 and c eq true"#).unwrap(),
            "(|(!(a=*))(&(b=1)(c=TRUE)))"
        );
        assert!(matches!(
            translate(r#"a ne "x""#),
            Err(ConnectorError::BadRequest(_))
        ));
        assert!(matches!(
            translate(r#"a/b eq "x""#),
            Err(ConnectorError::BadRequest(_))
        ));
    }
}
