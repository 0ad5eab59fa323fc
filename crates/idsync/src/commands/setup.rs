//! Opening a project for a command: load and validate the config, open the repository, build
//! the connectors, compile the mappings.

use anyhow::{Context, Result, anyhow};
use idsync_config::Project;
use idsync_connectors::Connector;
use idsync_engine::{Engine, Resources};
use idsync_repo::Repository;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// A configuration problem: exit code 2 with the diagnostics on stderr.
#[derive(Debug)]
pub struct ConfigInvalid(pub String);

impl std::fmt::Display for ConfigInvalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.trim_end())
    }
}

impl std::error::Error for ConfigInvalid {}

/// Loads the project, printing warnings on stderr. A sample project is run in its working copy
/// (see [`super::sample`]), and says so on stderr.
pub fn load(dir: &Path) -> Result<Arc<Project>> {
    let loaded = read(dir)?;
    let loaded = if loaded.project.settings.sample {
        let work = super::sample::refresh_working_copy(&loaded.project.dir)?;
        eprintln!(
            "sample project: running on its working copy {} (the sample's files stay as they are; delete that folder to start over)",
            work.display()
        );
        read(&work)?
    } else {
        loaded
    };
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    Ok(Arc::new(loaded.project))
}

/// Loads and validates the project in `dir` as it is.
fn read(dir: &Path) -> Result<idsync_config::Loaded> {
    match idsync_config::load_project_from_env(dir) {
        Ok(loaded) => {
            // The schedules' triggers (cron syntax, time zones) are checked by the scheduler.
            let errors = idsync_engine::scheduler::trigger_diagnostics(&loaded.project);
            if !errors.is_empty() {
                let lines: String = errors.iter().map(|e| format!("{e}\n")).collect();
                return Err(ConfigInvalid(lines).into());
            }
            Ok(loaded)
        }
        Err(diags) => Err(ConfigInvalid(diags.to_string()).into()),
    }
}

/// This machine's host name: the default node id (docs/configuration.md#confidsyncjson).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// `<project>/.idsync/` (the embedded repository, the generated admin token) is readable by
/// this user only: an existing one is tightened to 0700 (the repository creates it so).
fn private_state_dir(project: &Project) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = project.dir.join(".idsync");
    match std::fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() && m.permissions().mode() & 0o077 != 0 => {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("setting the mode of {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// The repository URL: the flag or environment, then `idsync.json`, then the embedded default.
pub fn repo_url(project: &Project, flag: Option<&str>) -> String {
    flag.map(str::to_string)
        .or_else(|| project.settings.repo_url.clone())
        .unwrap_or_else(|| format!("sqlite://{}", project.dir.join(".idsync/repo.db").display()))
}

pub async fn open_repo(project: &Project, flag: Option<&str>) -> Result<Arc<dyn Repository>> {
    let url = repo_url(project, flag);
    private_state_dir(project)?;
    let repo = idsync_repo::open(&url)
        .await
        .with_context(|| format!("opening the repository {}", redact(&url)))?;
    for m in &project.managed {
        if !m.indexed.is_empty() {
            let props: Vec<String> = m
                .indexed
                .iter()
                .map(|p| {
                    if p.starts_with('/') {
                        p.clone()
                    } else {
                        format!("/{p}")
                    }
                })
                .collect();
            repo.ensure_indexes(&m.name, &props).await?;
        }
    }
    Ok(repo)
}

/// A URL without its password, for messages (the product's one masker).
pub fn redact(url: &str) -> String {
    idsync_core::secrets::redact_urls(url)
}

/// Builds every enabled connector of the project.
pub async fn connectors(project: &Project) -> Result<BTreeMap<String, Arc<dyn Connector>>> {
    let mut out = BTreeMap::new();
    for (name, cfg) in &project.connectors {
        if !cfg.enabled {
            continue;
        }
        let c = idsync_connectors::build_connector(cfg, &project.dir)
            .map_err(|e| anyhow!("connector {name}: {e}"))?;
        out.insert(name.clone(), c);
    }
    Ok(out)
}

pub async fn engine(
    project: Arc<Project>,
    repo: Arc<dyn Repository>,
    node_id: String,
) -> Result<Arc<Engine>> {
    let conns = connectors(&project).await?;
    let resources = Resources::new(&project, repo.clone(), conns);
    Ok(Engine::new(project, repo, resources, node_id)?)
}

/// The host of scripts' `openidm` calls for a process that does not serve (`idsync recon`):
/// the same API as `idsync serve` answers them, in-process, as the internal system user
/// (docs/scripts.md). Keep the returned host alive while the engine runs.
pub async fn script_host(engine: &Arc<Engine>) -> Result<Arc<dyn idsync_script::ScriptHost>> {
    let project = engine.project.clone();
    let auth = idsync_api::AuthState::new(&project.auth, None)?;
    let state = idsync_api::ApiState::new(
        project.clone(),
        engine.repo.clone(),
        engine
            .resources
            .connectors()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        engine.node_id.clone(),
        auth,
    )
    .with_hooks(Arc::new(idsync_api::sync::EngineHooks(engine.clone())))
    .with_system_actions(Arc::new(idsync_api::livesync::LiveSyncActions(
        engine.clone(),
    )))
    .with_script_host(engine.script_host().clone());
    Ok(idsync_api::script_host::install(
        &state,
        idsync_api::engine_routes(engine.clone()),
    ))
}
