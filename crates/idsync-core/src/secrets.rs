//! The one masker of the product: what counts as a secret and how it is hidden, used for
//! configuration shown over REST, connector and repository messages, logs and `Debug` output.
//!
//! A secret is recognised by its key (`password`, `passwd`, `pwd`, `secret`, `credentials`,
//! `clientKey`, `accessKey`, `token`, `privateKey`, `apiKey`, `passphrase`, token hashes) in any
//! case and anywhere in the key, except keys that only say *where* a secret lives
//! (`passwordColumn`, `passwordAttribute`, `tokenHeader`...). A password inside a URL
//! (`postgres://user:S3cret@host/db`) is a secret wherever the URL appears.

use serde_json::{Map, Value};

/// What a masked secret looks like.
pub const MASK: &str = "********";

/// Parts of a key that name a secret (compared lower-case, anywhere in the key).
const SECRET_PARTS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "credential",
    "secret",
    "privatekey",
    "clientkey",
    "accesskey",
    "apikey",
    "token",
    "sha256",
    "passphrase",
];

/// Endings of keys that name where a secret lives, not the secret.
const LOCATION_ENDINGS: &[&str] = &["column", "attribute", "header", "field", "name", "policy"];

/// Members of an object under a secret key that describe a field rather than hold a secret (a
/// schema property called `password` with its `type`, `nativeName` and `flags`).
const SCHEMA_KEYS: &[&str] = &[
    "type",
    "nativeName",
    "nativeType",
    "required",
    "flags",
    "description",
    "title",
    "format",
    "name",
];

/// Whether `key` names a secret.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_PARTS.iter().any(|s| k.contains(s)) && !LOCATION_ENDINGS.iter().any(|s| k.ends_with(s))
}

/// A copy of `value` with every secret masked: the scalars under a secret key (at any depth
/// below it, except schema descriptors) and the passwords of URLs in any string. Null stays
/// null, so a reader can tell "not set" from "set".
pub fn mask_secrets(value: &Value) -> Value {
    mask(value, false)
}

fn mask(value: &Value, secret: bool) -> Value {
    match value {
        Value::Object(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                let inner = if secret {
                    !SCHEMA_KEYS.contains(&k.as_str())
                } else {
                    is_secret_key(k)
                };
                out.insert(k.clone(), mask(v, inner));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| mask(v, secret)).collect()),
        Value::Null => Value::Null,
        Value::String(s) if !secret => Value::String(redact_urls(s)),
        _ if secret => Value::String(MASK.into()),
        other => other.clone(),
    }
}

/// `text` with the password of every `scheme://user:password@host` in it replaced by the mask
/// (messages of drivers and configuration errors quote URLs).
pub fn redact_urls(text: &str) -> String {
    if !text.contains("://") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (head, tail) = rest.split_at(start + 3);
        out.push_str(head);
        // The authority ends at the first character that cannot be part of it.
        let end = tail
            .find(|c: char| {
                c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"' || c == '\''
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon + 1]);
                out.push_str(MASK);
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_known_by_name() {
        for k in [
            "password",
            "userPassword",
            "passwd",
            "pwd",
            "clientSecret",
            "credentials",
            "clientKey",
            "accessKey",
            "privateKey",
            "apiKey",
            "token",
            "refresh_token",
            "sha256",
            "passphrase",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "passwordColumn",
            "passwordAttribute",
            "tokenHeader",
            "host",
            "user",
            "url",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn masks_values_objects_and_urls() {
        let v = json!({
            "url": "postgres://u:S3cret@db:5432/x",
            "user": "u",
            "passwd": "p1",
            "credentials": {"type": "password", "value": "p2", "list": ["p3"]},
            "password": null,
            "properties": {"password": {"type": "string", "nativeName": "userPassword",
                                        "flags": ["NOT_READABLE"]}},
            "n": 3
        });
        let m = mask_secrets(&v);
        let text = m.to_string();
        for s in ["S3cret", "p1", "p2", "p3"] {
            assert!(!text.contains(s), "{s} shown in {text}");
        }
        assert_eq!(m["url"], "postgres://u:********@db:5432/x");
        assert_eq!(m["credentials"]["type"], "password");
        assert_eq!(m["password"], Value::Null);
        assert_eq!(m["properties"]["password"]["nativeName"], "userPassword");
        assert_eq!(m["n"], 3);
    }

    #[test]
    fn redacts_urls_in_text() {
        assert_eq!(
            redact_urls("cannot connect to mysql://root:pw@127.0.0.1/db: refused"),
            "cannot connect to mysql://root:********@127.0.0.1/db: refused"
        );
        assert_eq!(redact_urls("http://host/x?a=b"), "http://host/x?a=b");
        assert_eq!(redact_urls("no url"), "no url");
        assert_eq!(redact_urls("a://u@h b://x:y@z"), "a://u@h b://x:********@z");
    }
}
