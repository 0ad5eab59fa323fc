//! Just enough DN handling for rename and comparison: DNs compare case-insensitively with
//! insignificant spaces ignored, and split at the first unescaped comma.

/// The components of a DN, split at unescaped commas and trimmed.
fn components(dn: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in dn.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            cur.push(c);
            escaped = true;
        } else if c == ',' {
            parts.push(normalize_rdn(&cur));
            cur.clear();
        } else {
            cur.push(c);
        }
    }
    if !cur.trim().is_empty() || !parts.is_empty() {
        parts.push(normalize_rdn(&cur));
    }
    parts
}

fn normalize_rdn(rdn: &str) -> String {
    rdn.split('+')
        .map(|ava| match ava.split_once('=') {
            Some((a, v)) => format!("{}={}", a.trim(), v.trim()).to_lowercase(),
            None => ava.trim().to_lowercase(),
        })
        .collect::<Vec<_>>()
        .join("+")
}

/// A DN in a form that compares with `==` as [`equal`] compares (a map key).
pub fn normalize(dn: &str) -> String {
    components(dn).join(",")
}

/// Case-insensitive DN equality.
pub fn equal(a: &str, b: &str) -> bool {
    components(a) == components(b)
}

/// Whether `dn` is `base` or below it.
pub fn is_under(dn: &str, base: &str) -> bool {
    let d = components(dn);
    let b = components(base);
    d.len() >= b.len() && d[d.len() - b.len()..] == b[..]
}

/// `(rdn, parent)`: the DN split at its first unescaped comma.
pub fn split(dn: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in dn.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            return Some((dn[..i].trim(), dn[i + 1..].trim()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_rules() {
        assert!(equal(
            "UID=a, ou=People,DC=example",
            "uid=A,ou=people,dc=example"
        ));
        assert!(!equal("uid=a,ou=x", "uid=b,ou=x"));
        assert_eq!(split(r"cn=a\,b,ou=x,dc=y"), Some((r"cn=a\,b", "ou=x,dc=y")));
        assert!(is_under(
            "uid=a,ou=People,dc=example,dc=com",
            "DC=example,dc=com"
        ));
        assert!(!is_under("uid=a,dc=other", "dc=example,dc=com"));
        assert_eq!(
            normalize("UID=a, ou=People,DC=example"),
            normalize("uid=A,ou=people,dc=example")
        );
    }
}
