//! Paged reads: one search per page with the RFC 2696 paged-results control, and the registry
//! of open cursors behind our opaque `_pagedResultsCookie`s.
//!
//! Why a registry: OpenLDAP ties a paged-results cookie to the connection that started the
//! search, and without server-side sorting there is no key to resume a search from. So a
//! cursor owns one dedicated connection (outside the pool, so paging never starves writes)
//! and the server's cookie; our cookie names the cursor and the page sequence number. Any
//! caller in this process — on any pooled connection or none — can fetch the next page with
//! it. The cursor expires after `CURSOR_TTL` without use; a cookie for an expired, unknown or
//! already consumed cursor is a `BadRequest`. Cookies do not survive a restart or travel to
//! another process; reconciliation's page jobs, which must, read `entryUUID` ranges instead
//! (`resume.rs`).

use super::error::classify;
use crate::contract::{ConnectorError, ConnectorResult};
use base64::Engine as _;
use ldap3::controls::{ControlType, PagedResults};
use ldap3::{Ldap, Scope, SearchEntry};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const CURSOR_TTL: Duration = Duration::from_secs(600);
/// Open cursors beyond this evict the least recently used (each holds a connection).
pub const MAX_CURSORS: usize = 256;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// One page of a search.
#[derive(Debug)]
pub struct Page {
    pub entries: Vec<SearchEntry>,
    /// The server's cookie; empty when the search is complete.
    pub next: Vec<u8>,
}

/// Runs one page of a paged search on `ldap`.
pub async fn fetch_page(
    ldap: &mut Ldap,
    base: &str,
    filter: &str,
    attrs: &[String],
    size: i32,
    cookie: Vec<u8>,
    timeout: Duration,
) -> ConnectorResult<Page> {
    let ctrl = PagedResults { size, cookie };
    let res = ldap
        .with_timeout(timeout)
        .with_controls(ctrl)
        .search(base, Scope::Subtree, filter, attrs)
        .await
        .map_err(|e| classify(e, base))?;
    let (entries, result) = res.success().map_err(|e| classify(e, base))?;
    let mut next = Vec::new();
    for c in &result.ctrls {
        if matches!(c.0, Some(ControlType::PagedResults)) && c.1.val.is_some() {
            next = c.1.parse::<PagedResults>().cookie;
        }
    }
    Ok(Page {
        entries: entries.into_iter().map(SearchEntry::construct).collect(),
        next,
    })
}

/// Reads the whole of one search under `base`, handing each entry to `each`: in `blockSize`
/// pages with the paged-results control, or as one search when the directory must not be
/// paged (`usePagedResultControl: false`). The connection is left as it is; on an error that
/// breaks it the caller discards it.
pub async fn search_all(
    ldap: &mut Ldap,
    cfg: &super::config::LdapConfig,
    base: &str,
    filter: &str,
    attrs: &[String],
    mut each: impl FnMut(SearchEntry),
) -> ConnectorResult<()> {
    if !cfg.use_paged_result_control {
        let res = ldap
            .with_timeout(cfg.operation_timeout)
            .search(base, Scope::Subtree, filter, attrs)
            .await
            .map_err(|e| classify(e, base))?;
        let (entries, _) = res.success().map_err(|e| classify(e, base))?;
        entries
            .into_iter()
            .for_each(|e| each(SearchEntry::construct(e)));
        return Ok(());
    }
    let mut cookie = Vec::new();
    loop {
        let page = fetch_page(
            ldap,
            base,
            filter,
            attrs,
            cfg.block_size,
            cookie,
            cfg.operation_timeout,
        )
        .await?;
        page.entries.into_iter().for_each(&mut each);
        if page.next.is_empty() {
            return Ok(());
        }
        cookie = page.next;
    }
}

/// An open paged search.
#[derive(Debug)]
pub struct Cursor {
    pub ldap: Ldap,
    /// Which of the base contexts is being read.
    pub base_index: usize,
    pub server_cookie: Vec<u8>,
    /// The filter and attributes the cursor was opened for; a cookie replayed with another
    /// query is refused rather than silently continuing the old one.
    pub fingerprint: String,
    seq: u64,
    last_used: Instant,
}

impl Cursor {
    pub fn new(ldap: Ldap, fingerprint: String) -> Self {
        Self {
            ldap,
            base_index: 0,
            server_cookie: Vec::new(),
            fingerprint,
            seq: 0,
            last_used: Instant::now(),
        }
    }
}

#[derive(Debug)]
pub struct CursorRegistry {
    open: Mutex<HashMap<u64, Cursor>>,
    next_id: AtomicU64,
    /// Makes cookies of different processes (or restarts) distinct.
    epoch: u64,
}

impl Default for CursorRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl CursorRegistry {
    pub fn new() -> Self {
        let epoch = uuid::Uuid::new_v4().as_u64_pair().0;
        Self {
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            epoch,
        }
    }

    /// Takes the cursor a cookie names out of the registry (the caller puts it back with
    /// [`CursorRegistry::park`] if more pages follow).
    pub fn take(&self, cookie: &str, fingerprint: &str) -> ConnectorResult<(u64, Cursor)> {
        let bad = || {
            ConnectorError::BadRequest(
                "unknown, expired or already used LDAP paged results cookie".into(),
            )
        };
        let raw = B64.decode(cookie).map_err(|_| bad())?;
        let text = String::from_utf8(raw).map_err(|_| bad())?;
        let mut parts = text.split('.');
        let (Some(epoch), Some(id), Some(seq), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let (Ok(epoch), Ok(id), Ok(seq)) = (
            u64::from_str_radix(epoch, 16),
            id.parse::<u64>(),
            seq.parse::<u64>(),
        ) else {
            return Err(bad());
        };
        if epoch != self.epoch {
            return Err(bad());
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        self.expire(&mut open);
        match open.get(&id) {
            Some(c) if c.seq == seq && c.fingerprint == fingerprint => {}
            Some(_) => return Err(bad()),
            None => return Err(bad()),
        }
        open.remove(&id).map(|c| (id, c)).ok_or_else(bad)
    }

    pub fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Stores a cursor that has more pages and returns the cookie for its next page.
    pub fn park(&self, id: u64, mut cursor: Cursor) -> String {
        cursor.seq += 1;
        cursor.last_used = Instant::now();
        let cookie = B64.encode(format!("{:x}.{id}.{}", self.epoch, cursor.seq));
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        self.expire(&mut open);
        if open.len() >= MAX_CURSORS
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, c)| c.last_used)
                .map(|(k, _)| *k)
        {
            open.remove(&oldest);
        }
        open.insert(id, cursor);
        cookie
    }

    pub fn open_cursors(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn expire(&self, open: &mut HashMap<u64, Cursor>) {
        open.retain(|_, c| c.last_used.elapsed() < CURSOR_TTL);
    }
}
