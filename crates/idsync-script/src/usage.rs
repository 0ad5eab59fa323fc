//! Static, conservative analysis of which keys of an object variable a script can read. When a
//! script only ever writes `source.givenName`, `source.sn`, ... the engine converts just those
//! keys to JavaScript instead of the whole object: conversion is most of a transform's cost.
//! The analysis must never under-approximate: any use it cannot prove harmless means "all keys".

/// Text that can reach a variable without naming it (`eval("sou"+"rce")`, `arguments[0]`,
/// `f.caller`), or name it in disguise (`sourc\u0065`): any of it turns the analysis off.
const ESCAPES: &[&str] = &["eval", "arguments", "caller", "\\u"];

/// The keys of variable `name` that `source` can read, when every occurrence of the identifier
/// is a plain member read `name.key` (not a call `name.key(...)`); `None` means "convert all".
pub(crate) fn member_keys(source: &str, name: &str) -> Option<Box<[Box<str>]>> {
    if ESCAPES.iter().any(|e| source.contains(e)) {
        return None;
    }
    let bytes = source.as_bytes();
    let mut keys: Vec<Box<str>> = Vec::new();
    let mut from = 0;
    while let Some(found) = source[from..].find(name) {
        let start = from + found;
        let end = start + name.len();
        from = end;
        // Only ASCII identifier characters can make this a longer identifier; anything else
        // (including non-ASCII, which may be whitespace) counts as a use, to stay conservative.
        if start > 0 && is_ident_byte(bytes[start - 1]) {
            continue;
        }
        if bytes.get(end).is_some_and(|b| is_ident_byte(*b)) {
            continue;
        }
        if bytes.get(end) != Some(&b'.') {
            return None;
        }
        let key_start = end + 1;
        let key_len = bytes[key_start..]
            .iter()
            .take_while(|b| is_ident_byte(**b))
            .count();
        if key_len == 0 || bytes[key_start].is_ascii_digit() {
            return None;
        }
        let key_end = key_start + key_len;
        let after = bytes[key_end..].iter().find(|b| !b.is_ascii_whitespace());
        // A call or tagged template on the member could be a prototype method that looks at
        // every key (hasOwnProperty, toString): convert everything then.
        if matches!(after, Some(b'(' | b'`')) || bytes.get(key_end).is_some_and(|b| !b.is_ascii()) {
            return None;
        }
        let key = &source[key_start..key_end];
        if !keys.iter().any(|k| k.as_ref() == key) {
            keys.push(Box::from(key));
        }
        from = key_end;
    }
    Some(keys.into_boxed_slice())
}

/// Words through which a script can reach the global object or bind a name without `=`
/// (`this`, `for (k in o)`, `Function('x=1')`, escapes that hide an `=` in a string).
const GLOBAL_REACH: &[&str] = &[
    "this",
    "globalThis",
    "constructor",
    "eval",
    "Function",
    "for",
    "\\",
    "Reflect",
    "Object",
    "with",
    "import",
    "arguments",
    "caller",
];

/// Whether running `source` may leave a property on the global object, so the engine must sweep
/// it after the call. Only a plain `=` assignment to an undeclared name, a `for-in/of` over one,
/// or code that reaches the global object creates one (`++` and compound assignments to an
/// undeclared name throw instead). Conservative: `false` only when none of these can occur.
pub(crate) fn may_create_globals(source: &str) -> bool {
    if GLOBAL_REACH.iter().any(|w| source.contains(w)) {
        return true;
    }
    let bytes = source.as_bytes();
    bytes.iter().enumerate().any(|(i, b)| {
        *b == b'='
            && !(i > 0 && b"=!<>+-*/%&|^?".contains(&bytes[i - 1]))
            && !matches!(bytes.get(i + 1), Some(b'=' | b'>'))
    })
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

#[cfg(test)]
mod tests {
    use super::{may_create_globals, member_keys};

    #[test]
    fn only_assignment_free_scripts_skip_the_global_sweep() {
        for script in [
            "source.givenName + ' ' + source.sn",
            "object.active === true && object.dept != 'x' && object.n <= 3",
            "source.list.map(x => x + 1)",
        ] {
            assert!(!may_create_globals(script), "{script}");
        }
        for script in [
            "i = 0",
            "a = b == c",
            "for (k in source) k",
            "this.x = 1",
            "Function('x' + String.fromCharCode(61) + '1')()",
            "globalThis['x'] ",
            "[].constructor.constructor('return 1')()",
            "'\\x3d'",
            "Object.assign(globalThis, {a: 1})",
            "[a] = [1]",
        ] {
            assert!(may_create_globals(script), "{script}");
        }
    }

    fn keys(source: &str) -> Option<Vec<String>> {
        member_keys(source, "source").map(|k| k.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn plain_member_reads_are_the_only_keys_needed() {
        assert_eq!(
            keys("source.givenName + ' ' + source.sn"),
            Some(vec!["givenName".into(), "sn".into()])
        );
        assert_eq!(keys("source.mail.toLowerCase()"), Some(vec!["mail".into()]));
        assert_eq!(keys("resource.x + sources"), Some(vec![]));
    }

    #[test]
    fn any_other_use_needs_every_key() {
        for script in [
            "JSON.stringify(source)",
            "source['mail']",
            "source .mail",
            "source?.mail",
            "source.hasOwnProperty('mail')",
            "source.toString ()",
            "Object.keys(source).length",
            "eval('sour' + 'ce')",
            "arguments[0].mail",
            "sourc\\u0065.mail",
            "'source'",
            "source.1",
        ] {
            assert_eq!(keys(script), None, "{script}");
        }
    }
}
