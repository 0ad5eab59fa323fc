//! Loading a project folder: read every conf file, substitute `&{NAME}`, read each file into its
//! typed form, run the cross-file checks, and return the [`Project`] or every diagnostic. The only
//! I/O of the crate is here and in script-file reading; nothing is connected or compiled.

use crate::crossref::{Placed, check_mappings, check_schedules, order_by_sync_after};
use crate::cx::{Cx, Obj, Sink};
use crate::diag::{Diagnostic, Diagnostics};
use crate::subst::{env_alias, referenced_names, substitute};
use crate::types::*;
use crate::{Loaded, auth, connector, managed, mapping, schedule, settings};
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::Path;

/// Loads and validates the project in `dir`. `env` reads an environment variable (injected so that
/// tests and `config validate` can control it). Every error and warning is collected.
pub fn load_project(
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, Diagnostics> {
    let mut sink = Sink::default();
    let dir = match std::fs::canonicalize(dir) {
        Ok(d) if d.is_dir() => d,
        Ok(d) => return Err(fatal(&d, "is not a folder")),
        Err(e) => return Err(fatal(dir, &format!("cannot open the project folder: {e}"))),
    };
    let project = load(&dir, env, &mut sink);
    sort(&mut sink.errors);
    sort(&mut sink.warnings);
    match project {
        Some(project) if sink.errors.is_empty() => Ok(Loaded {
            project,
            warnings: sink.warnings,
        }),
        _ => Err(Diagnostics {
            errors: sink.errors,
            warnings: sink.warnings,
        }),
    }
}

/// [`load_project`] with the process environment.
pub fn load_project_from_env(dir: &Path) -> Result<Loaded, Diagnostics> {
    load_project(dir, &|name| std::env::var(name).ok())
}

/// Every key the readers of the project in `dir` recognise (used, or accepted and ignored), as
/// `FILE PATH` (`sync.json mappings[].queuedSync.workers`, `script source`): the names the
/// configuration reference (docs/configuration.md) must list. A reader only reports its keys
/// when the project has an object it reads, so `dir` should hold one of each; whether the
/// values are valid does not matter. Loads with an empty environment.
pub fn recognised_keys(dir: &Path) -> std::collections::BTreeSet<String> {
    let mut sink = Sink::default();
    let _ = load(dir, &|_| None, &mut sink);
    sink.keys
}

fn fatal(dir: &Path, message: &str) -> Diagnostics {
    Diagnostics {
        errors: vec![Diagnostic::new(dir.display().to_string(), "", message)],
        warnings: Vec::new(),
    }
}

/// One conf file, parsed.
struct ConfFile {
    rel: String,
    value: Value,
    text: String,
}

fn read_json(sink: &mut Sink, dir: &Path, rel: &str) -> Option<ConfFile> {
    let text = match std::fs::read_to_string(dir.join(rel)) {
        Ok(t) => t,
        Err(e) => {
            sink.errors.push(Diagnostic::new(
                rel,
                "",
                format!("cannot read the file: {e}"),
            ));
            return None;
        }
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(value) => Some(ConfFile {
            rel: rel.to_string(),
            value,
            text,
        }),
        Err(e) => {
            sink.errors
                .push(Diagnostic::new(rel, "", format!("invalid JSON: {e}")));
            None
        }
    }
}

fn load(dir: &Path, env: &dyn Fn(&str) -> Option<String>, sink: &mut Sink) -> Option<Project> {
    let conf = dir.join("conf");
    let mut names: Vec<String> = match std::fs::read_dir(&conf) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter(|e| e.path().is_file())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| n.ends_with(".json"))
            .collect(),
        Err(e) => {
            sink.errors.push(Diagnostic::new(
                "conf",
                "",
                format!("the project has no readable conf/ folder: {e}"),
            ));
            return None;
        }
    };
    names.sort();
    let project_dir = dir.display().to_string();

    // idsync.json first: it is a substitution source for every other file.
    let mut settings_raw = Map::new();
    let mut settings_file = None;
    if names.iter().any(|n| n == "idsync.json")
        && let Some(mut f) = read_json(sink, dir, "conf/idsync.json")
    {
        let mut cx = Cx::new(&f.rel, dir, sink);
        let pd = project_dir.clone();
        substitute(&mut cx, &mut f.value, &|n| {
            special(n, &pd).or_else(|| env_lookup(env, n))
        });
        match f.value {
            Value::Object(m) => settings_raw = m,
            ref other => cx.wrong_type("", "an object", other),
        }
        settings_file = Some(cx.whole_substitutions);
    }
    {
        let mut cx = Cx::new("conf/idsync.json", dir, sink);
        settings::apply_env(&mut cx, &mut settings_raw, env);
    }
    let properties: BTreeMap<String, String> = settings_raw
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_string),
            )
        })
        .collect();
    let resolve = |n: &str| -> Option<String> { resolve_name(n, &project_dir, &properties, env) };

    let mut used_names: Vec<String> = Vec::new();
    let mut files: Vec<(ConfFile, std::collections::HashSet<String>)> = Vec::new();
    for n in &names {
        if n == "idsync.json" {
            continue;
        }
        let known = matches!(
            n.as_str(),
            "sync.json" | "managed.json" | "authentication.json"
        ) || prefixed(n, "provisioner.openicf-").is_some()
            || prefixed(n, "schedule-").is_some()
            || prefixed(n, "mapping-").is_some();
        if !known {
            sink.warnings.push(Diagnostic::new(
                format!("conf/{n}"),
                "",
                "file not used by idsync",
            ));
            continue;
        }
        let Some(mut f) = read_json(sink, dir, &format!("conf/{n}")) else {
            continue;
        };
        used_names.extend(referenced_names(&f.text));
        let mut cx = Cx::new(&f.rel, dir, sink);
        substitute(&mut cx, &mut f.value, &resolve);
        let whole = cx.whole_substitutions;
        files.push((f, whole));
    }

    let settings = {
        let mut cx = Cx::new("conf/idsync.json", dir, sink);
        cx.whole_substitutions = settings_file.unwrap_or_default();
        settings::settings(&mut cx, &settings_raw, &used_names)
    };

    let mut connectors: BTreeMap<String, ConnectorConfig> = BTreeMap::new();
    let mut managed_types = Vec::new();
    let mut auth = AuthConfig::default();
    let mut schedules: BTreeMap<String, (String, Schedule)> = BTreeMap::new();
    let mut sync_mappings: Vec<Placed> = Vec::new();
    let mut file_mappings: Vec<Placed> = Vec::new();
    // Mappings that failed their own checks: (file, pointer, raw JSON) for the endpoint check.
    let mut unplaced: Vec<(String, String, Value)> = Vec::new();
    let mut queue_recovery = QueueRecovery::default();
    let mut queue_balancing = QueueBalancing::default();
    for (f, whole) in &files {
        let n = f.rel.trim_start_matches("conf/");
        let mut cx = Cx::new(&f.rel, dir, sink);
        cx.whole_substitutions = whole.clone();
        if n == "managed.json" {
            managed_types = managed::managed(&mut cx, &f.value);
        } else if n == "authentication.json" {
            auth = auth::auth(&mut cx, &f.value);
        } else if n == "sync.json" {
            let Some(mut o) = cx.object("", &f.value) else {
                continue;
            };
            if let Some(ms) = o.get("mappings") {
                match ms {
                    Value::Array(items) => {
                        for (i, m) in items.iter().enumerate() {
                            let ptr = format!("/mappings/{i}");
                            if let Some(mapping) = mapping::mapping(&mut cx, &ptr, m, None) {
                                sync_mappings.push(Placed {
                                    file: f.rel.clone(),
                                    ptr,
                                    mapping,
                                });
                            } else {
                                unplaced.push((f.rel.clone(), ptr, m.clone()));
                            }
                        }
                    }
                    other => cx.wrong_type("/mappings", "an array", other),
                }
            }
            if let Some(q) = o.get("queueRecovery") {
                queue_recovery = recovery(&mut cx, &o.at("queueRecovery"), q);
            }
            if let Some(q) = o.get("queueBalancing") {
                queue_balancing = balancing(&mut cx, &o.at("queueBalancing"), q);
            }
            o.finish(&mut cx);
        } else if let Some(name) = prefixed(n, "provisioner.openicf-") {
            if let Some(c) = connector::connector(&mut cx, &f.value, name) {
                if let Some(prev) = connectors.get(&c.name) {
                    let msg = format!(
                        "duplicate connector name \"{}\" (also in {})",
                        c.name, prev.file
                    );
                    cx.error("/name", msg);
                } else {
                    connectors.insert(c.name.clone(), c);
                }
            }
        } else if let Some(name) = prefixed(n, "schedule-") {
            if let Some(s) = schedule::schedule(&mut cx, name, &f.value) {
                schedules.insert(name.to_string(), (f.rel.clone(), s));
            }
        } else if let Some(name) = prefixed(n, "mapping-") {
            match mapping::mapping(&mut cx, "", &f.value, Some(name)) {
                Some(mapping) => file_mappings.push(Placed {
                    file: f.rel.clone(),
                    ptr: String::new(),
                    mapping,
                }),
                None => unplaced.push((f.rel.clone(), String::new(), f.value.clone())),
            }
        }
    }

    // IDM gives a project without managed.json its default types (`user`, `role`).
    if !names.iter().any(|n| n == "managed.json") {
        managed_types = crate::defaults::default_managed_types();
    }

    let mut placed = sync_mappings;
    placed.extend(order_by_sync_after(sink, file_mappings));
    check_mappings(sink, &mut placed, &connectors, &managed_types);
    // A mapping with its own errors is not typed, but its source and target are still checked,
    // so that one run of `config validate` reports every error.
    for (file, ptr, raw) in &unplaced {
        for key in ["source", "target"] {
            let Some(path) = raw.get(key).and_then(Value::as_str) else {
                continue;
            };
            let pointer = format!("{ptr}/{key}");
            let reported = sink
                .errors
                .iter()
                .any(|d| &d.file == file && d.pointer == pointer);
            if !reported
                && let Ok(parsed) = idsync_core::ResourcePath::parse(path)
                && let Some(msg) =
                    crate::crossref::unknown_collection(&parsed, &connectors, &managed_types)
            {
                sink.errors
                    .push(Diagnostic::new(file.clone(), pointer, msg));
            }
        }
    }
    let mapping_names: Vec<String> = placed.iter().map(|p| p.mapping.name.clone()).collect();
    check_schedules(sink, &schedules, &mapping_names, &connectors);

    Some(Project {
        dir: dir.to_path_buf(),
        mappings: placed.into_iter().map(|p| p.mapping).collect(),
        connectors,
        managed: managed_types,
        schedules: schedules.into_iter().map(|(k, (_, s))| (k, s)).collect(),
        auth,
        settings,
        queue_recovery,
        queue_balancing,
        properties,
    })
}

/// Where a `&{NAME}` resolves after conf/idsync.json is read: the project folder's names, then
/// idsync.json's top-level values, then the environment.
pub(crate) fn resolve_name(
    name: &str,
    project_dir: &str,
    properties: &BTreeMap<String, String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    special(name, project_dir)
        .or_else(|| properties.get(name).cloned())
        .or_else(|| env_lookup(env, name))
}

/// `<prefix><name>.json` → `name`.
fn prefixed<'a>(file: &'a str, prefix: &str) -> Option<&'a str> {
    file.strip_prefix(prefix)?
        .strip_suffix(".json")
        .filter(|n| !n.is_empty())
}

/// The names that always mean the project folder
/// (docs/configuration.md#values-from-outside-name-substitution).
fn special(name: &str, project_dir: &str) -> Option<String> {
    matches!(name, "launcher.project.location" | "idm.instance.dir")
        .then(|| project_dir.to_string())
}

/// The environment variable NAME, then NAME upper-cased with `.` and `-` as `_`.
fn env_lookup(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    env(name).or_else(|| env_alias(name).and_then(|a| env(&a)))
}

fn recovery(cx: &mut Cx<'_>, ptr: &str, v: &Value) -> QueueRecovery {
    let d = QueueRecovery::default();
    let Some(mut o) = cx.object(ptr, v) else {
        return d;
    };
    let r = QueueRecovery {
        enabled: o.bool_or(cx, "enabled", d.enabled),
        recovery_interval_ms: o
            .opt_at_least(cx, "recoveryInterval", 1)
            .map_or(d.recovery_interval_ms, |s| s.saturating_mul(1000)),
    };
    o.finish(cx);
    r
}

fn balancing(cx: &mut Cx<'_>, ptr: &str, v: &Value) -> QueueBalancing {
    let d = QueueBalancing::default();
    let Some(mut o): Option<Obj<'_>> = cx.object(ptr, v) else {
        return d;
    };
    let r = QueueBalancing {
        enabled: o.bool_or(cx, "enabled", d.enabled),
        balance_interval_ms: o
            .opt_at_least(cx, "balanceInterval", 1)
            .map_or(d.balance_interval_ms, |s| s.saturating_mul(1000)),
    };
    o.finish(cx);
    r
}

/// The documented order: by file, then by position in the file (pointer tokens, numbers compared
/// as numbers), then by message.
fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        a.file
            .cmp(&b.file)
            .then_with(|| cmp_pointers(&a.pointer, &b.pointer))
            .then_with(|| a.message.cmp(&b.message))
    });
}

fn cmp_pointers(a: &str, b: &str) -> Ordering {
    let mut ta = a.split('/');
    let mut tb = b.split('/');
    loop {
        match (ta.next(), tb.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let o = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(i), Ok(j)) => i.cmp(&j),
                    _ => x.cmp(y),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}
