//! `idsync auth new-token` and `idsync auth hash-password` (docs/cli.md): their output, their
//! usage errors, and a real `idsync serve` that accepts the credentials they made.

use crate::server::{Server, assert_crest_error, send};
use crate::support::{Project, idsync};
use idsync_api::{sha256_hex, verify_password};
use reqwest::Method;
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Output, Stdio};

fn new_token(name: &str, role: &str) -> Output {
    idsync()
        .args(["auth", "new-token", "--name", name, "--role", role])
        .output()
        .expect("run idsync auth new-token")
}

/// The token (line 1) and the entry (the rest) of a successful `new-token`.
fn token_and_entry(out: &Output) -> (String, Value) {
    assert!(
        out.status.success(),
        "new-token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let (token, rest) = stdout.split_once('\n').unwrap();
    let entry: Value = serde_json::from_str(rest)
        .unwrap_or_else(|e| panic!("the entry after the token is not JSON ({e}): {rest:?}"));
    (token.to_string(), entry)
}

fn hash_password(stdin: &[u8]) -> Output {
    let mut child = idsync()
        .args(["auth", "hash-password"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn idsync auth hash-password");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn phc_of(password: &str) -> String {
    let out = hash_password(format!("{password}\n").as_bytes());
    assert!(
        out.status.success(),
        "hash-password failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout:?}");
    stdout.trim_end().to_string()
}

#[test]
fn new_token_prints_the_token_alone_then_the_entry_holding_its_sha256() {
    let (token, entry) = token_and_entry(&new_token("ci-reader", "reader"));
    assert!(token.len() >= 32, "a short token: {token:?}");
    assert!(
        !token.contains(char::is_whitespace),
        "whitespace in the token: {token:?}"
    );
    assert_eq!(
        entry,
        json!({"name": "ci-reader", "roles": ["reader"], "sha256": sha256_hex(&token)})
    );
    // The token itself is never in the entry, and every call makes a new one.
    assert!(!entry.to_string().contains(&token));
    let (other, admin) = token_and_entry(&new_token("ci-admin", "admin"));
    assert_ne!(other, token);
    assert_eq!(admin["roles"], json!(["admin"]));
}

#[test]
fn new_token_refuses_an_unknown_role() {
    let out = new_token("x", "root");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no token for a usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("root"), "{stderr}");
}

#[test]
fn hash_password_prints_a_phc_string_of_the_line_read() {
    let phc = phc_of("correct horse battery staple");
    assert!(phc.starts_with("$argon2"), "{phc}");
    assert!(verify_password("correct horse battery staple", &phc));
    // The newline is not part of the password.
    assert!(!verify_password("correct horse battery staple\n", &phc));
    // A CRLF line (a Windows pipe) loses both characters; no newline at all is fine too.
    let crlf = hash_password(b"pw with crlf\r\n");
    let crlf = String::from_utf8(crlf.stdout).unwrap();
    assert!(verify_password("pw with crlf", crlf.trim_end()), "{crlf}");
    let bare = hash_password(b"no-newline");
    let bare = String::from_utf8(bare.stdout).unwrap();
    assert!(verify_password("no-newline", bare.trim_end()), "{bare}");
    // Salted: the same password hashes differently each time.
    assert_ne!(phc_of("same"), phc_of("same"));
}

#[test]
fn hash_password_refuses_an_empty_password() {
    for stdin in [&b"\n"[..], &b""[..]] {
        let out = hash_password(stdin);
        assert_eq!(out.status.code(), Some(2), "stdin {stdin:?}");
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("no password"), "{stderr}");
    }
}

#[tokio::test]
async fn serve_accepts_the_token_and_the_user_made_by_the_cli() {
    let p = Project::copy_of("samples/getting-started");
    let (token, entry) = token_and_entry(&new_token("ops", "admin"));
    let password = "s3cret, with spaces";
    let phc = phc_of(password);
    p.write(
        "conf/authentication.json",
        &json!({
            "tokens": [entry],
            "users": [{"username": "alice", "roles": ["reader"], "password": phc}],
        })
        .to_string(),
    );
    let s = Server::start_with(p.path(), &[], &["--node-id", "x"]);
    let url = s.url("recon");

    let (status, body) = send(s.http().get(&url).bearer_auth(&token)).await;
    assert_eq!(status, 200, "{body}");

    let as_alice = |pw: &str| {
        s.http()
            .request(Method::GET, &url)
            .header("X-OpenIDM-Username", "alice")
            .header("X-OpenIDM-Password", pw)
    };
    let (status, body) = send(as_alice(password)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(as_alice("s3cret")).await;
    assert_crest_error(status, &body, 401, "invalid credentials");

    // alice is a reader: she may not start a run; the admin token may.
    let (status, body) = send(
        s.http()
            .post(s.url("recon?_action=recon&mapping=nope"))
            .header("X-OpenIDM-Username", "alice")
            .header("X-OpenIDM-Password", password),
    )
    .await;
    assert_crest_error(status, &body, 403, "may not");
    let (status, body) = send(s.http().get(&url).bearer_auth("not-the-token")).await;
    assert_crest_error(status, &body, 401, "invalid credentials");
}
