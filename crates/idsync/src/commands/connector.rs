//! `idsync connector test`: can a connector reach its system?

use super::setup;
use anyhow::{Result, anyhow};
use std::path::Path;
use std::process::ExitCode;

pub async fn test(dir: &Path, name: &str) -> Result<ExitCode> {
    let project = setup::load(dir)?;
    let cfg = project.connector(name).ok_or_else(|| {
        let known: Vec<&str> = project.connectors.keys().map(String::as_str).collect();
        setup::ConfigInvalid(format!(
            "unknown connector \"{name}\" (known: {})",
            known.join(", ")
        ))
    })?;
    let connector = idsync_connectors::build_connector(cfg, &project.dir)
        .map_err(|e| anyhow!("connector {name}: {e}"))?;
    match connector.test().await {
        Ok(()) => {
            println!("{}", serde_json::json!({"name": name, "ok": true}));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!(
                "{}",
                serde_json::json!({"name": name, "ok": false, "error": e.to_string()})
            );
            Ok(ExitCode::from(1))
        }
    }
}
