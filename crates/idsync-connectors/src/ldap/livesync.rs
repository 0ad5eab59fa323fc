//! liveSync of an LDAP object type, in one of two modes (docs/configuration.md, "LDAP
//! connector"):
//!
//! - **Timestamps** (`useTimestampsForSync: true`, ICF's setting): the entries of the type whose
//!   `modifyTimestamp` or `createTimestamp` is at or after the token's time. Creates and
//!   updates only: a deleted entry leaves nothing to find.
//! - **Accesslog** (`accessLogDatabase` names the log database of OpenLDAP's accesslog overlay,
//!   e.g. `cn=accesslog`): the successful writes logged after the token (`reqStart`), deletes
//!   included. Each added, modified or renamed entry is read as it is now (found by
//!   `reqEntryUUID`); one gone since, or no longer of the type, is left to its own log record.
//!   A delete's id is `reqEntryUUID` (or `reqDN` with `uidAttribute: dn`, or the uid attribute
//!   in `reqOld`), and its type is judged by the `objectClass` values in `reqOld` when the
//!   overlay logs them (`logold`).
//!
//! **The token** is `{"time": T, "seen": [[key, time, version], ...]}`: the latest time read
//! and what was read at or after `T - lookBack` (`liveSyncLookBackSeconds`). A poll reads from
//! `T - lookBack` again and skips what `seen` lists with the same version, so entries written
//! in the second already read (timestamps have one-second resolution) are neither missed nor
//! applied twice, and neither are writes that became visible a moment after a later one (a
//! write's time is taken when it starts, not when it commits). In timestamp mode the key is the
//! entry's id and the version its `entryCSN` (microseconds; the timestamp where the server has
//! none, so two writes of one entry in one second are then seen once); in accesslog mode the
//! key is the record's `reqStart` (unique) and there is no version.

use super::LdapObjectSet;
use super::error::classify;
use crate::contract::{Change, ChangeBatch, ConnectorError, ConnectorResult};
use chrono::{DateTime, NaiveDateTime, Utc};
use ldap3::{Scope, SearchEntry};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// The time a token starts from when the source had nothing yet.
const EPOCH: &str = "19700101000000Z";
/// Entries read per `(|(entryUUID=..)..)` search of the accesslog mode.
const READ_CHUNK: usize = 200;

/// Parses an LDAP GeneralizedTime (`20261207142521Z`, `20261207142521.000009Z`,
/// `20261207142521.0Z`) as UTC. Offsets other than `Z` are not used by the servers idsync
/// reads from and are refused.
pub fn parse_generalized_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s
        .trim()
        .strip_suffix('Z')
        .or_else(|| s.trim().strip_suffix('z'))?;
    let (whole, frac) = match s.split_once(['.', ',']) {
        Some((w, f)) => (w, f),
        None => (s, ""),
    };
    let whole = match whole.len() {
        14 => whole.to_string(),
        12 => format!("{whole}00"),
        10 => format!("{whole}0000"),
        _ => return None,
    };
    let naive = NaiveDateTime::parse_from_str(&whole, "%Y%m%d%H%M%S").ok()?;
    let mut t = naive.and_utc();
    if !frac.is_empty() {
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        let nanos: i64 = digits.parse().ok()?;
        t += chrono::Duration::nanoseconds(nanos);
    }
    Some(t)
}

/// A GeneralizedTime with microseconds, for filters.
fn format_generalized_time(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d%H%M%S%.6fZ").to_string()
}

/// One thing read: its key, time, version and the change it makes (`None`: read, but no
/// change of this object set).
struct Record {
    key: String,
    time: DateTime<Utc>,
    time_text: String,
    version: String,
    change: Option<Change>,
}

/// What the token remembers of one thing read: its time, that time as the server wrote it, and
/// its version.
type Seen = (DateTime<Utc>, String, String);

/// The token's parts.
#[derive(Debug, Clone, Default)]
struct Position {
    time: Option<(DateTime<Utc>, String)>,
    seen: HashMap<String, Seen>,
}

impl Position {
    fn from_token(token: &Value) -> ConnectorResult<Self> {
        let bad = || ConnectorError::BadRequest(format!("not an LDAP liveSync token: {token}"));
        let text = token.get("time").and_then(Value::as_str).ok_or_else(bad)?;
        let time = parse_generalized_time(text).ok_or_else(bad)?;
        let mut seen = HashMap::new();
        for s in token
            .get("seen")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(k), Some(t), v) = (
                s.get(0).and_then(Value::as_str),
                s.get(1).and_then(Value::as_str),
                s.get(2).and_then(Value::as_str).unwrap_or(""),
            ) else {
                return Err(bad());
            };
            let at = parse_generalized_time(t).ok_or_else(bad)?;
            seen.insert(k.to_string(), (at, t.to_string(), v.to_string()));
        }
        Ok(Self {
            time: Some((time, text.to_string())),
            seen,
        })
    }

    fn token(&self) -> Value {
        let mut seen: Vec<(&String, &Seen)> = self.seen.iter().collect();
        seen.sort_by(|a, b| (a.1.0, a.0).cmp(&(b.1.0, b.0)));
        let time = self.time.as_ref().map_or(EPOCH, |(_, s)| s.as_str());
        json!({
            "time": time,
            "seen": seen
                .into_iter()
                .map(|(k, (_, t, v))| json!([k, t, v]))
                .collect::<Vec<_>>(),
        })
    }

    /// Where the next poll reads from.
    fn floor(&self, look_back: Duration) -> DateTime<Utc> {
        let t = self
            .time
            .as_ref()
            .map_or(DateTime::<Utc>::UNIX_EPOCH, |(t, _)| *t);
        t - chrono::Duration::from_std(look_back).unwrap_or(chrono::Duration::zero())
    }

    fn already(&self, r: &Record) -> bool {
        self.seen
            .get(&r.key)
            .is_some_and(|(_, _, v)| *v == r.version)
    }

    /// `r` was read: the time moves up to it, and what falls out of the look-back is
    /// forgotten.
    fn advance(&mut self, r: &Record, look_back: Duration) {
        if self.time.as_ref().is_none_or(|(t, _)| r.time > *t) {
            self.time = Some((r.time, r.time_text.clone()));
        }
        self.seen.insert(
            r.key.clone(),
            (r.time, r.time_text.clone(), r.version.clone()),
        );
        let floor = self.floor(look_back);
        self.seen.retain(|_, (t, _, _)| *t >= floor);
    }
}

/// The time of an entry's last write: the later of its two timestamps.
fn write_time(e: &SearchEntry) -> Option<(DateTime<Utc>, String)> {
    ["modifyTimestamp", "createTimestamp"]
        .iter()
        .filter_map(|a| first_value(e, a))
        .filter_map(|s| parse_generalized_time(&s).map(|t| (t, s)))
        .max_by_key(|(t, _)| *t)
}

fn first_value(e: &SearchEntry, attr: &str) -> Option<String> {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .and_then(|(_, v)| v.first().cloned())
}

fn values<'a>(e: &'a SearchEntry, attr: &str) -> &'a [String] {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .map_or(&[], |(_, v)| v.as_slice())
}

impl LdapObjectSet {
    pub(super) async fn live_changes(&self, token: Option<&Value>) -> ConnectorResult<ChangeBatch> {
        let cfg = self.shared.pool.config();
        let look_back = cfg.live_sync_look_back;
        let accesslog = cfg.access_log_database.clone();
        if accesslog.is_none() && !cfg.use_timestamps_for_sync {
            return Err(ConnectorError::BadRequest(
                "LDAP liveSync needs useTimestampsForSync: true or accessLogDatabase \
                 (OpenLDAP's accesslog) in the connector configuration"
                    .into(),
            ));
        }
        let token = token.filter(|t| !t.is_null());
        let mut pos = match token {
            Some(t) => Position::from_token(t)?,
            None => Position::default(),
        };
        let floor = token.map(|_| pos.floor(look_back));
        let mut records = match &accesslog {
            Some(db) => self.accesslog_records(db, floor, token.is_none()).await?,
            None => self.timestamp_records(floor, token.is_none()).await?,
        };
        records.retain(|r| !pos.already(r));
        records.sort_by(|a, b| (a.time, &a.key).cmp(&(b.time, &b.key)));
        if token.is_none() {
            // The first pass: where the source is now, nothing applied.
            for r in &records {
                pos.advance(r, look_back);
            }
            if pos.time.is_none() {
                pos.time = Some((DateTime::<Utc>::UNIX_EPOCH, EPOCH.to_string()));
            }
            return Ok(ChangeBatch {
                token: Some(pos.token()),
                ..ChangeBatch::default()
            });
        }
        if accesslog.is_some() {
            self.read_current(&mut records).await?;
        }
        let mut batch = ChangeBatch::default();
        for r in records {
            pos.advance(&r, look_back);
            if let Some(change) = r.change {
                if batch.changes.len() == cfg.change_log_block_size {
                    // The token stays after the last change handed over.
                    batch.token = batch.tokens.last().cloned();
                    return Ok(batch);
                }
                batch.changes.push(change);
                batch.tokens.push(pos.token());
                batch.times.push(Some(r.time));
            }
        }
        batch.token = Some(pos.token());
        Ok(batch)
    }

    /// Every entry of the type under the base contexts, read in pages.
    async fn search_all(
        &self,
        base: &str,
        filter: &str,
        attrs: &[String],
    ) -> ConnectorResult<Vec<SearchEntry>> {
        let cfg = self.shared.pool.config();
        let mut conn = self.shared.pool.get().await?;
        let mut out = Vec::new();
        let result =
            super::paging::search_all(&mut conn, cfg, base, filter, attrs, |e| out.push(e)).await;
        if let Err(e) = result {
            if super::error::breaks_connection(&e) {
                conn.discard();
            }
            return Err(e);
        }
        Ok(out)
    }

    /// Timestamp mode: the entries written at or after `floor` (all of them on a first pass,
    /// which only needs their times).
    async fn timestamp_records(
        &self,
        floor: Option<DateTime<Utc>>,
        first: bool,
    ) -> ConnectorResult<Vec<Record>> {
        let cfg = self.shared.pool.config();
        let filter = match floor {
            Some(f) => {
                let f = format_generalized_time(f);
                self.combined(&format!("(|(modifyTimestamp>={f})(createTimestamp>={f}))"))
            }
            None => self.type_filter.clone(),
        };
        let mut attrs = if first {
            vec![self.uid_attr().to_owned()]
        } else {
            self.all_attributes()
        };
        attrs.extend(["modifyTimestamp", "createTimestamp", "entryCSN"].map(String::from));
        let mut out = Vec::new();
        for base in &cfg.base_contexts {
            let entries = self.search_all(base, &filter, &attrs).await?;
            // A first pass needs only ids and times; later ones carry whole objects, with
            // `ldapGroups` when the type declares it.
            let objects = if first {
                entries.iter().map(|e| self.to_object(e, None)).collect()
            } else {
                self.to_objects_pooled(&entries, None).await?
            };
            for (e, object) in entries.into_iter().zip(objects) {
                let Some((time, time_text)) = write_time(&e) else {
                    continue;
                };
                let Some(id) = object.get("_id").and_then(Value::as_str).map(str::to_owned) else {
                    continue;
                };
                let version = first_value(&e, "entryCSN").unwrap_or_else(|| time_text.clone());
                out.push(Record {
                    key: id.clone(),
                    time,
                    time_text,
                    version,
                    change: Some(Change::CreateOrUpdate { id, object }),
                });
            }
        }
        Ok(out)
    }

    /// Accesslog mode: the successful writes logged at or after `floor` under the base
    /// contexts. Creates and updates carry a placeholder object until [`Self::read_current`].
    async fn accesslog_records(
        &self,
        db: &str,
        floor: Option<DateTime<Utc>>,
        first: bool,
    ) -> ConnectorResult<Vec<Record>> {
        let cfg = self.shared.pool.config();
        let mut filter = String::from("(&(objectClass=auditWriteObject)(reqResult=0)");
        if let Some(f) = floor {
            filter.push_str(&format!("(reqStart>={})", format_generalized_time(f)));
        }
        filter.push(')');
        let attrs: Vec<String> = if first {
            vec!["reqStart".into()]
        } else {
            [
                "reqStart",
                "reqType",
                "reqDN",
                "reqEntryUUID",
                "reqOld",
                "reqNewRDN",
                "reqNewSuperior",
            ]
            .map(String::from)
            .to_vec()
        };
        let uid = self.uid_attr().to_owned();
        let uid_is_dn = uid.eq_ignore_ascii_case("dn");
        let classes = self.object_classes();
        let mut out = Vec::new();
        for e in self.search_all(db, &filter, &attrs).await? {
            let Some(time_text) = first_value(&e, "reqStart") else {
                continue;
            };
            let Some(time) = parse_generalized_time(&time_text) else {
                continue;
            };
            let mut record = Record {
                key: time_text.clone(),
                time,
                time_text,
                version: String::new(),
                change: None,
            };
            if first {
                out.push(record);
                continue;
            }
            let dn = first_value(&e, "reqDN").unwrap_or_default();
            let new_dn = match (
                first_value(&e, "reqNewRDN"),
                first_value(&e, "reqNewSuperior"),
            ) {
                (Some(rdn), Some(sup)) => format!("{rdn},{sup}"),
                (Some(rdn), None) => match super::dn::split(&dn) {
                    Some((_, parent)) => format!("{rdn},{parent}"),
                    None => rdn,
                },
                _ => dn.clone(),
            };
            let under = |d: &str| cfg.base_contexts.iter().any(|b| super::dn::is_under(d, b));
            let kind = first_value(&e, "reqType").unwrap_or_default();
            let entry_uuid = first_value(&e, "reqEntryUUID");
            let old: Vec<(String, String)> = values(&e, "reqOld")
                .iter()
                .filter_map(|l| l.split_once(": "))
                .map(|(a, v)| (a.to_string(), v.to_string()))
                .collect();
            match kind.as_str() {
                "delete" if under(&dn) => {
                    let old_classes: HashSet<String> = old
                        .iter()
                        .filter(|(a, _)| a.eq_ignore_ascii_case("objectClass"))
                        .map(|(_, v)| v.to_ascii_lowercase())
                        .collect();
                    let of_type = old_classes.is_empty()
                        || classes
                            .iter()
                            .all(|c| old_classes.contains(&c.to_ascii_lowercase()));
                    let id = if uid_is_dn {
                        Some(dn.clone())
                    } else if uid.eq_ignore_ascii_case("entryUUID") {
                        entry_uuid
                    } else {
                        old.iter()
                            .find(|(a, _)| a.eq_ignore_ascii_case(&uid))
                            .map(|(_, v)| v.clone())
                    };
                    match id {
                        Some(id) if of_type => record.change = Some(Change::Delete { id }),
                        Some(_) => {}
                        None => tracing::warn!(
                            dn,
                            "an accesslog delete without the uid attribute {uid} in reqOld \
                             (logold/logoldattr) is not reported"
                        ),
                    }
                }
                "add" | "modify" | "modrdn" if under(&new_dn) || under(&dn) => {
                    // Read as it is now in read_current: id = entryUUID or the DN to read.
                    let locator = match entry_uuid {
                        Some(u) => json!({"entryUUID": u}),
                        None => json!({"dn": new_dn}),
                    };
                    record.change = Some(Change::CreateOrUpdate {
                        id: String::new(),
                        object: locator,
                    });
                }
                _ => {}
            }
            out.push(record);
        }
        Ok(out)
    }

    /// Replaces each create/update placeholder by the entry as it is now; one that is gone or
    /// not of this type makes no change. Several records of one entry make one change, at the
    /// last of them.
    async fn read_current(&self, records: &mut [Record]) -> ConnectorResult<()> {
        let mut uuids: Vec<String> = Vec::new();
        let mut dns: Vec<String> = Vec::new();
        for r in records.iter() {
            if let Some(Change::CreateOrUpdate { object, .. }) = &r.change {
                if let Some(u) = object.get("entryUUID").and_then(Value::as_str) {
                    uuids.push(u.to_string());
                } else if let Some(d) = object.get("dn").and_then(Value::as_str) {
                    dns.push(d.to_string());
                }
            }
        }
        uuids.sort();
        uuids.dedup();
        dns.sort();
        dns.dedup();
        let cfg = self.shared.pool.config();
        let mut attrs = self.all_attributes();
        attrs.push("entryUUID".into());
        let mut by_uuid: HashMap<String, Value> = HashMap::new();
        let mut by_dn: HashMap<String, Value> = HashMap::new();
        for chunk in uuids.chunks(READ_CHUNK) {
            let mut f = String::from("(|");
            for u in chunk {
                f.push_str(&format!("(entryUUID={})", super::filter::escape_value(u)));
            }
            f.push(')');
            let filter = self.combined(&f);
            for base in &cfg.base_contexts {
                let entries = self.search_all(base, &filter, &attrs).await?;
                let objects = self.to_objects_pooled(&entries, None).await?;
                for (e, object) in entries.iter().zip(objects) {
                    if let Some(u) = first_value(e, "entryUUID") {
                        by_uuid.insert(u.to_ascii_lowercase(), object);
                    }
                }
            }
        }
        for dn in dns {
            let res = self
                .shared
                .pool
                .run(|mut ldap| {
                    let attrs = attrs.clone();
                    let filter = self.type_filter.clone();
                    let dn = dn.clone();
                    async move {
                        let res = ldap
                            .with_timeout(cfg.operation_timeout)
                            .search(&dn, Scope::Base, &filter, attrs)
                            .await
                            .map_err(|e| classify(e, &dn))?;
                        match res.success() {
                            Ok((entries, _)) => {
                                Ok(entries.into_iter().next().map(SearchEntry::construct))
                            }
                            Err(e) if super::error::result_code(&e) == Some(32) => Ok(None),
                            Err(e) => Err(classify(e, &dn)),
                        }
                    }
                })
                .await?;
            if let Some(e) = res {
                let object = self
                    .to_objects_pooled(std::slice::from_ref(&e), None)
                    .await?
                    .pop()
                    .unwrap_or(Value::Null);
                by_dn.insert(dn.to_ascii_lowercase(), object);
            }
        }
        // The last record of each entry carries its change.
        let mut last: HashMap<String, usize> = HashMap::new();
        for i in 0..records.len() {
            let r = &records[i];
            let Some(Change::CreateOrUpdate { object, .. }) = &r.change else {
                continue;
            };
            let current = if let Some(u) = object.get("entryUUID").and_then(Value::as_str) {
                by_uuid.get(&u.to_ascii_lowercase())
            } else {
                object
                    .get("dn")
                    .and_then(Value::as_str)
                    .and_then(|d| by_dn.get(&d.to_ascii_lowercase()))
            };
            let change = current.and_then(|o| {
                let id = o.get("_id").and_then(Value::as_str)?.to_string();
                Some(Change::CreateOrUpdate {
                    id,
                    object: o.clone(),
                })
            });
            if let Some(Change::CreateOrUpdate { id, .. }) = &change
                && let Some(prev) = last.insert(id.clone(), i)
            {
                records[prev].change = None;
            }
            records[i].change = change;
        }
        Ok(())
    }

    /// The object classes an entry of this type has.
    fn object_classes(&self) -> Vec<String> {
        let cfg = self.shared.pool.config();
        let classes = if self.ty.is_group() {
            cfg.group_object_classes.clone()
        } else if self.ty.native_type == "__ACCOUNT__" || self.ty.name == "account" {
            cfg.account_object_classes.clone()
        } else {
            vec![self.ty.native_type.clone()]
        };
        classes
            .into_iter()
            .filter(|c| !c.eq_ignore_ascii_case("top"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests may unwrap.

    use super::*;

    #[test]
    fn generalized_times_parse_with_and_without_fractions() {
        let a = parse_generalized_time("20261207142521Z").unwrap();
        let b = parse_generalized_time("20261207142521.000009Z").unwrap();
        let c = parse_generalized_time("20261207142521.5Z").unwrap();
        assert!(a < b && b < c);
        assert_eq!(format_generalized_time(b), "20261207142521.000009Z");
        assert_eq!(
            parse_generalized_time("202612071425Z").unwrap().timestamp() % 60,
            0
        );
        assert!(parse_generalized_time("20261207142521+0100").is_none());
        assert!(parse_generalized_time("garbage").is_none());
    }

    fn record(key: &str, time: &str, version: &str) -> Record {
        Record {
            key: key.into(),
            time: parse_generalized_time(time).unwrap(),
            time_text: time.into(),
            version: version.into(),
            change: None,
        }
    }

    #[test]
    fn the_token_keeps_what_was_read_within_the_look_back() {
        let look_back = Duration::from_secs(1);
        let mut p = Position::default();
        p.advance(&record("a", "20261207142519Z", "csn1"), look_back);
        p.advance(&record("b", "20261207142521Z", "csn2"), look_back);
        p.advance(&record("c", "20261207142521Z", "csn3"), look_back);
        // a fell out of the look-back (2 s before the latest time).
        assert_eq!(
            p.token(),
            json!({"time": "20261207142521Z", "seen": [
                ["b", "20261207142521Z", "csn2"], ["c", "20261207142521Z", "csn3"]]})
        );
        let back = Position::from_token(&p.token()).unwrap();
        assert!(back.already(&record("b", "20261207142521Z", "csn2")));
        // The same entry written again in the same second has another version.
        assert!(!back.already(&record("b", "20261207142521Z", "csn9")));
        assert_eq!(
            format_generalized_time(back.floor(look_back)),
            "20261207142520.000000Z"
        );
        assert!(Position::from_token(&json!({"value": 3})).is_err());
    }
}
