//! Checks across files: mapping sources and targets against connectors and managed types, `links`,
//! duplicate names, `syncAfter`, schedules naming mappings and sources, and the `syncAfter` order
//! of mapping-*.json files. Pure: it sees only parsed values.

use crate::cx::{Sink, known_list};
use crate::diag::Diagnostic;
use crate::types::*;
use idsync_core::ResourcePath;
use std::collections::BTreeMap;

/// A mapping and where it was declared.
#[derive(Debug)]
pub(crate) struct Placed {
    pub file: String,
    pub ptr: String,
    pub mapping: Mapping,
}

impl Placed {
    fn error(&self, sink: &mut Sink, key: &str, message: String) {
        sink.errors.push(Diagnostic::new(
            self.file.clone(),
            format!("{}/{key}", self.ptr),
            message,
        ));
    }
}

pub(crate) fn check_mappings(
    sink: &mut Sink,
    placed: &mut [Placed],
    connectors: &BTreeMap<String, ConnectorConfig>,
    managed: &[ManagedType],
) {
    for p in placed.iter() {
        for (key, path) in [("source", &p.mapping.source), ("target", &p.mapping.target)] {
            if let Some(msg) = unknown_collection(path, connectors, managed) {
                p.error(sink, key, msg);
            }
        }
    }
    for i in 0..placed.len() {
        let name = placed[i].mapping.name.clone();
        if let Some(first) = placed[..i].iter().find(|q| q.mapping.name == name) {
            let msg = format!(
                "duplicate mapping name \"{name}\" (first defined at {} {})",
                first.file, first.ptr
            );
            placed[i].error(sink, "name", msg);
        }
    }
    let mut names: Vec<String> = Vec::new();
    for p in placed.iter() {
        if !names.contains(&p.mapping.name) {
            names.push(p.mapping.name.clone());
        }
    }
    for i in 0..placed.len() {
        let (s, t) = (
            placed[i].mapping.source.clone(),
            placed[i].mapping.target.clone(),
        );
        if let Some(links) = placed[i].mapping.links.clone() {
            match placed.iter().find(|q| q.mapping.name == links.mapping) {
                None => {
                    let msg = format!(
                        "links names unknown mapping \"{}\" (known: {})",
                        links.mapping,
                        known_list(&names)
                    );
                    placed[i].error(sink, "links", msg);
                }
                Some(d) if d.mapping.source == s && d.mapping.target == t => {}
                Some(d) if d.mapping.source == t && d.mapping.target == s => {
                    if let Some(l) = placed[i].mapping.links.as_mut() {
                        l.reversed = true;
                    }
                }
                Some(d) => {
                    let msg = format!(
                        "links to mapping \"{}\" ({} -> {}), which has neither the same nor the swapped source and target ({} -> {})",
                        links.mapping,
                        d.mapping.source_str,
                        d.mapping.target_str,
                        placed[i].mapping.source_str,
                        placed[i].mapping.target_str
                    );
                    placed[i].error(sink, "links", msg);
                }
            }
        }
        for (j, after) in placed[i].mapping.sync_after.iter().enumerate() {
            if !names.contains(after) {
                let msg = format!(
                    "syncAfter names unknown mapping \"{after}\" (known: {})",
                    known_list(&names)
                );
                placed[i].error(sink, &format!("syncAfter/{j}"), msg);
            }
        }
        if let (Some(quals), Some(Correlation::Queries(qs))) = (
            placed[i].mapping.qualifier_list(),
            &placed[i].mapping.correlation,
        ) {
            for (j, q) in qs.iter().enumerate() {
                let lq = q.link_qualifier.as_deref().unwrap_or("default");
                if !quals.iter().any(|x| x == lq) {
                    let msg = format!(
                        "correlation query for unknown link qualifier \"{lq}\" (known: {})",
                        known_list(quals)
                    );
                    placed[i].error(sink, &format!("correlationQuery/{j}"), msg);
                }
            }
        }
    }
}

/// Why `path` does not name a known collection, if it does not.
pub(crate) fn unknown_collection(
    path: &ResourcePath,
    connectors: &BTreeMap<String, ConnectorConfig>,
    managed: &[ManagedType],
) -> Option<String> {
    match path {
        ResourcePath::Managed { object_type, .. } => {
            (!managed.iter().any(|m| &m.name == object_type)).then(|| {
                format!(
                    "unknown managed object type \"{object_type}\" (known: {})",
                    known_list(managed.iter().map(|m| m.name.as_str()))
                )
            })
        }
        ResourcePath::System {
            connector,
            object_type,
            ..
        } => match connectors.get(connector) {
            None => Some(format!(
                "unknown connector \"{connector}\" (known: {})",
                known_list(connectors.keys())
            )),
            Some(c) if !c.object_types.contains_key(object_type) => Some(format!(
                "unknown object type \"{object_type}\" of connector \"{connector}\" (known: {})",
                known_list(c.object_types.keys())
            )),
            Some(_) => None,
        },
        ResourcePath::Link { .. } => {
            Some("repo/link is not a collection a mapping can use".to_string())
        }
    }
}

/// Schedules that name a mapping or a liveSync source that does not exist.
pub(crate) fn check_schedules(
    sink: &mut Sink,
    schedules: &BTreeMap<String, (String, Schedule)>,
    mapping_names: &[String],
    connectors: &BTreeMap<String, ConnectorConfig>,
) {
    for (file, s) in schedules.values() {
        match s.invoke_service {
            InvokeService::Sync => {
                if let Some(m) = s.invoke_context.get("mapping").and_then(|m| m.as_str())
                    && !mapping_names.iter().any(|n| n == m)
                {
                    sink.errors.push(Diagnostic::new(
                        file.clone(),
                        "/invokeContext/mapping",
                        format!(
                            "unknown mapping \"{m}\" (known: {})",
                            known_list(mapping_names)
                        ),
                    ));
                }
            }
            InvokeService::Provisioner => {
                if let Some(src) = s.invoke_context.get("source").and_then(|m| m.as_str()) {
                    let msg = match ResourcePath::parse(src) {
                        Ok(p @ ResourcePath::System { .. }) => {
                            unknown_collection(&p, connectors, &[])
                        }
                        Ok(_) => Some(format!(
                            "liveSync source \"{src}\" must be system/<connector>/<type>"
                        )),
                        Err(e) => Some(e.to_string()),
                    };
                    if let Some(msg) = msg {
                        sink.errors.push(Diagnostic::new(
                            file.clone(),
                            "/invokeContext/source",
                            msg,
                        ));
                    }
                }
            }
            InvokeService::Script => {}
        }
    }
}

/// Orders mapping-*.json mappings so each comes after every mapping of its `syncAfter`; ties keep
/// file-name order. A cycle is reported and the remaining mappings keep file order.
pub(crate) fn order_by_sync_after(sink: &mut Sink, placed: Vec<Placed>) -> Vec<Placed> {
    let mut pending = placed;
    let mut out: Vec<Placed> = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready = pending.iter().position(|p| {
            p.mapping.sync_after.iter().all(|a| {
                out.iter().any(|o| &o.mapping.name == a)
                    || !pending.iter().any(|q| &q.mapping.name == a)
            })
        });
        match ready {
            Some(i) => out.push(pending.remove(i)),
            None => {
                let names = known_list(pending.iter().map(|p| p.mapping.name.as_str()));
                for p in &pending {
                    p.error(
                        sink,
                        "syncAfter",
                        format!("syncAfter forms a cycle between mappings {names}"),
                    );
                }
                out.append(&mut pending);
            }
        }
    }
    out
}
