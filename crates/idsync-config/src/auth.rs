//! `conf/authentication.json` read into [`AuthConfig`]
//! (docs/configuration.md#confauthenticationjson): token hashes and user password hashes with their
//! roles. It must not hash or verify anything.

use crate::cx::Cx;
use crate::types::{AuthConfig, Role, TokenDef, UserDef};
use serde_json::Value;

pub(crate) fn auth(cx: &mut Cx<'_>, v: &Value) -> AuthConfig {
    let mut out = AuthConfig::default();
    // Names seen so far, including entries that failed validation, so duplicates are reported too.
    let mut seen_tokens: Vec<String> = Vec::new();
    let mut seen_users: Vec<String> = Vec::new();
    let Some(mut o) = cx.object("", v) else {
        return out;
    };
    if let Some(tokens) = o.get("tokens") {
        let ptr = o.at("tokens");
        for (i, t) in array(cx, &ptr, tokens).iter().enumerate() {
            let Some(mut t) = cx.object(&format!("{ptr}/{i}"), t) else {
                continue;
            };
            let name = t.req_str(cx, "name");
            let roles = roles(cx, &mut t);
            let sha = t.req_str(cx, "sha256").and_then(|s| {
                let s = s.to_ascii_lowercase();
                if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Some(s)
                } else {
                    cx.error(
                        &t.at("sha256"),
                        "expected the 64 hex digits of the token's SHA-256",
                    );
                    None
                }
            });
            if let Some(n) = &name
                && seen_tokens.contains(n)
            {
                cx.error(&t.at("name"), format!("duplicate token name \"{n}\""));
            }
            seen_tokens.extend(name.clone());
            t.finish(cx);
            if let (Some(name), Some(roles), Some(sha256)) = (name, roles, sha) {
                out.tokens.push(TokenDef {
                    name,
                    roles,
                    sha256,
                });
            }
        }
    }
    if let Some(users) = o.get("users") {
        let ptr = o.at("users");
        for (i, u) in array(cx, &ptr, users).iter().enumerate() {
            let Some(mut u) = cx.object(&format!("{ptr}/{i}"), u) else {
                continue;
            };
            let username = u.req_str(cx, "username");
            let roles = roles(cx, &mut u);
            let password = u.req_str(cx, "password").and_then(|p| {
                if p.starts_with("$argon2") {
                    Some(p)
                } else {
                    // Never echo the value: it may be a plain-text password.
                    cx.error(&u.at("password"), "expected an argon2 PHC string (\"$argon2id$...\"); make one with `idsync auth hash-password`");
                    None
                }
            });
            if let Some(n) = &username
                && seen_users.contains(n)
            {
                cx.error(&u.at("username"), format!("duplicate user \"{n}\""));
            }
            seen_users.extend(username.clone());
            u.finish(cx);
            if let (Some(username), Some(roles), Some(password)) = (username, roles, password) {
                out.users.push(UserDef {
                    username,
                    roles,
                    password,
                });
            }
        }
    }
    o.finish(cx);
    out
}

fn array<'v>(cx: &mut Cx<'_>, ptr: &str, v: &'v Value) -> &'v [Value] {
    match v {
        Value::Array(a) => a,
        other => {
            cx.wrong_type(ptr, "an array", other);
            &[]
        }
    }
}

fn roles(cx: &mut Cx<'_>, o: &mut crate::cx::Obj<'_>) -> Option<Vec<Role>> {
    let list = o
        .required(cx, "roles")
        .and_then(|r| cx.string_list(&o.at("roles"), r))?;
    if list.is_empty() {
        cx.error(&o.at("roles"), "needs at least one role (admin or reader)");
        return None;
    }
    let mut out = Vec::new();
    for (i, r) in list.iter().enumerate() {
        match r.as_str() {
            "admin" => out.push(Role::Admin),
            "reader" => out.push(Role::Reader),
            other => cx.error(
                &format!("{}/{i}", o.at("roles")),
                format!("unknown role \"{other}\" (known: admin, reader)"),
            ),
        }
    }
    (out.len() == list.len()).then_some(out)
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Reader => "reader",
        }
    }
}
