//! Deterministic test data: a tiny LCG (no external randomness, so failures reproduce) and
//! helpers to build records.

use crate::changes::{ChangeSet, Op};
use crate::model::{
    AuditEntry, AuditKind, EventState, Job, Link, RunRecord, SyncAction, SyncEvent,
};
use chrono::Utc;
use idsync_core::{ReconStage, ReconState};
use serde_json::{Value, json};

/// A 64-bit linear congruential generator.
#[derive(Debug)]
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

pub const STRINGS: &[&str] = &[
    "alice",
    "Alice",
    "ALICE",
    "alicia",
    "bob",
    "Bob Smith",
    "émile",
    "ÉMILE",
    "zoë",
    "10",
    "",
    "a'quote",
    "ali",
    "straße",
];

/// A value of a random JSON type (for the `mixed` field).
pub fn scalar(r: &mut Lcg) -> Value {
    match r.below(6) {
        0 => json!(*r.pick(STRINGS)),
        1 => json!(r.below(21) as i64 - 5),
        2 => json!((r.below(40) as f64) / 4.0 - 2.0),
        3 => json!(r.below(2) == 0),
        4 => Value::Null,
        _ => json!([*r.pick(STRINGS), r.below(20) as i64]),
    }
}

/// A managed user with strings, numbers, booleans, arrays, nested objects and missing fields.
pub fn user(r: &mut Lcg, i: usize) -> Value {
    let mut o = serde_json::Map::new();
    o.insert(
        "userName".into(),
        json!(format!("{}{i:04}", r.pick(STRINGS))),
    );
    if r.below(5) != 0 {
        o.insert("name".into(), json!(*r.pick(STRINGS)));
    }
    if r.below(4) != 0 {
        o.insert("age".into(), json!(r.below(60) as i64));
    }
    if r.below(3) != 0 {
        o.insert("score".into(), json!((r.below(100) as f64) / 8.0));
    }
    if r.below(4) != 0 {
        o.insert("active".into(), json!(r.below(2) == 0));
    }
    let n = r.below(4);
    let tags: Vec<Value> = (0..n)
        .map(|_| match r.below(3) {
            0 => json!(*r.pick(STRINGS)),
            1 => json!(r.below(20) as i64),
            _ => json!(r.below(2) == 0),
        })
        .collect();
    if r.below(5) != 0 {
        o.insert("tags".into(), Value::Array(tags));
    }
    if r.below(3) != 0 {
        o.insert(
            "manager".into(),
            json!({"id": *r.pick(STRINGS), "level": r.below(5) as i64, "x": {"y": scalar(r)}}),
        );
    }
    o.insert("mixed".into(), scalar(r));
    if r.below(6) == 0 {
        o.insert("obj".into(), json!({"alice": "alice"}));
    }
    Value::Object(o)
}

pub fn create(object_type: &str, id: &str, value: Value) -> Op {
    Op::CreateObject {
        object_type: object_type.into(),
        id: id.into(),
        value,
    }
}

pub fn one(op: Op) -> ChangeSet {
    ChangeSet::new().with(op)
}

pub fn link(id: &str, ty: &str, q: &str, first: &str, second: &str) -> Link {
    Link {
        id: id.into(),
        rev: String::new(),
        link_type: ty.into(),
        link_qualifier: q.into(),
        first_id: first.into(),
        second_id: second.into(),
    }
}

pub fn run(id: &str, mapping: &str) -> RunRecord {
    RunRecord {
        id: id.into(),
        mapping: mapping.into(),
        analyze: false,
        state: ReconState::Active,
        stage: ReconStage::ActiveInitialized,
        started: Utc::now(),
        ended: None,
        cancel_requested: false,
        message: None,
        parameters: json!({"p": 1}),
        summary: json!({}),
        totals: json!({}),
        node_id: "node-a".into(),
    }
}

pub fn event(id: &str, mapping: &str, resource: &str) -> SyncEvent {
    SyncEvent {
        id: id.into(),
        rev: String::new(),
        mapping: mapping.into(),
        resource_id: resource.into(),
        resource_collection: "managed/user".into(),
        sync_action: SyncAction::NotifyUpdate,
        state: EventState::Pending,
        node_id: None,
        remaining_retries: -1,
        create_date: Utc::now(),
        old_object: Some(json!({"a": 1})),
        new_object: Some(json!({"a": 2})),
        object_rev: Some("2".into()),
        context: json!({"caller": "test"}),
        seq: 0,
    }
}

pub fn job(id: &str, kind: &str, run: Option<&str>) -> Job {
    Job::new(id, kind, run.map(str::to_string), json!({"page": id}))
}

pub fn audit(
    id: &str,
    kind: AuditKind,
    recon: &str,
    entry_type: &str,
    age_secs: i64,
) -> AuditEntry {
    AuditEntry {
        id: id.into(),
        kind,
        timestamp: Utc::now() - chrono::Duration::seconds(age_secs),
        recon_id: Some(recon.into()),
        mapping: Some("m".into()),
        entry_type: Some(entry_type.into()),
        entry: json!({"reconId": recon, "entryType": entry_type, "mapping": "m", "situation": if age_secs > 0 { "FOUND" } else { "ABSENT" }}),
    }
}
