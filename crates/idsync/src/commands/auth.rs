//! `idsync auth` (docs/configuration.md#confauthenticationjson): credentials for
//! `conf/authentication.json`, which stores only hashes. `new-token` prints a fresh token alone on
//! stdout's first line and the entry to add on the second; `hash-password` reads one line on stdin
//! and prints its argon2 PHC string.

use crate::cli::RoleArg;
use anyhow::{Result, bail};
use idsync_config::Role;
use std::io::{BufRead, Write};
use std::process::ExitCode;

pub fn new_token(name: &str, role: RoleArg) -> Result<ExitCode> {
    if name.trim().is_empty() {
        bail!("--name must not be empty");
    }
    let role = match role {
        RoleArg::Admin => Role::Admin,
        RoleArg::Reader => Role::Reader,
    };
    let (token, entry) = idsync_api::new_token(name, role);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{token}")?;
    writeln!(out, "{}", serde_json::to_string(&entry)?)?;
    out.flush()?;
    eprintln!(
        "add the JSON entry to \"tokens\" in conf/authentication.json; the token itself is not stored anywhere and is shown only now"
    );
    Ok(ExitCode::SUCCESS)
}

pub fn hash_password() -> Result<ExitCode> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line);
    if password.is_empty() {
        bail!("no password on stdin: give the password as one line on standard input");
    }
    let phc = idsync_api::hash_password(password)?;
    println!("{phc}");
    Ok(ExitCode::SUCCESS)
}
