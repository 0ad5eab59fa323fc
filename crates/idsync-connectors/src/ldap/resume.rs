//! Resumable paged reads (`ObjectSet::query_resumable`): pages as ranges of `entryUUID`, so
//! that any process can read the next page, or read a page again, from its cookie alone.
//!
//! A paged-results cookie belongs to the connection that started the search (`paging.rs`), so
//! it cannot travel to another node or survive a crash. Instead, the first page reads the
//! `entryUUID` of every entry the query matches (one attribute, in `blockSize` pages), sorts
//! them, and cuts them every page size: page *i* is the entries with
//! `lower_i <= entryUUID < lower_(i+1)`, read with an ordering filter (OpenLDAP's `entryUUID`
//! has `UUIDOrderingMatch`). The cookie carries the lower bounds of the pages still to read, so
//! it is self-contained; a page is read in `entryUUID` order. An entry created after the first
//! page is read by the page whose range holds it, if that page is read after the create, as
//! any paged read of a changing directory; none is read twice.
//!
//! Limit: the cookie grows by one UUID (37 bytes) per page still to read — 100 pages of
//! 10,000 for a million entries is 3.7 KB.

use super::config::LdapConfig;
use super::paging::search_all;
use crate::contract::{ConnectorError, ConnectorResult};
use base64::Engine as _;
use ldap3::{Ldap, SearchEntry};
use serde::{Deserialize, Serialize};

/// The attribute pages are cut on.
pub const KEY: &str = "entryUUID";
/// What a resumable cookie starts with (a registry cookie never does).
const PREFIX: &str = "r1.";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Cookie {
    /// The query the cookie continues (object type, filter, attributes).
    q: String,
    /// The lower bounds of the pages still to read; the first is the next page's.
    b: Vec<String>,
}

pub fn is_resumable(cookie: &str) -> bool {
    cookie.starts_with(PREFIX)
}

fn encode(query: &str, bounds: &[String]) -> String {
    let c = Cookie {
        q: query.to_owned(),
        b: bounds.to_vec(),
    };
    let json = serde_json::to_vec(&c).expect("a cookie serializes");
    format!("{PREFIX}{}", B64.encode(json))
}

/// The bounds a cookie carries, refused when it was made for another query.
fn decode(cookie: &str, query: &str) -> ConnectorResult<Vec<String>> {
    let bad = || ConnectorError::BadRequest("malformed LDAP paged-results cookie".into());
    let raw = cookie.strip_prefix(PREFIX).ok_or_else(bad)?;
    let json = B64.decode(raw).map_err(|_| bad())?;
    let c: Cookie = serde_json::from_slice(&json).map_err(|_| bad())?;
    if c.q != query {
        return Err(ConnectorError::BadRequest(
            "the paged-results cookie belongs to another query".into(),
        ));
    }
    if c.b.is_empty() || c.b.iter().any(|u| !is_uuid(u)) {
        return Err(bad());
    }
    Ok(c.b)
}

/// A lower-case UUID as OpenLDAP prints `entryUUID`; only such text goes into a filter.
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

/// The lower bounds of the pages: every `size`-th of the sorted keys.
fn bounds(mut keys: Vec<String>, size: usize) -> Vec<String> {
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter().step_by(size.max(1)).collect()
}

/// `query` restricted to `lower <= entryUUID < upper` (no lower bound for the first page).
fn range_filter(query: &str, lower: Option<&str>, upper: Option<&str>) -> String {
    let mut f = format!("(&{query}");
    if let Some(l) = lower {
        f.push_str(&format!("({KEY}>={l})"));
    }
    if let Some(u) = upper {
        f.push_str(&format!("(!({KEY}>={u}))"));
    }
    f.push(')');
    f
}

/// The key of an entry, lower-cased.
pub fn key_of(e: &SearchEntry) -> Option<String> {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(KEY))
        .and_then(|(_, v)| v.first())
        .map(|v| v.to_ascii_lowercase())
}

/// Where to read: the connection and the connector's settings (base contexts, limits).
pub struct Reader<'a> {
    pub ldap: &'a mut Ldap,
    pub cfg: &'a LdapConfig,
}

impl Reader<'_> {
    /// Every entry under every base matching `filter`.
    async fn search_all(
        &mut self,
        filter: &str,
        attrs: &[String],
    ) -> ConnectorResult<Vec<SearchEntry>> {
        let mut out = Vec::new();
        for base in &self.cfg.base_contexts {
            search_all(self.ldap, self.cfg, base, filter, attrs, |e| out.push(e)).await?;
        }
        Ok(out)
    }

    /// One page of `query` (an LDAP filter) with `attrs`: the first (no cookie) or the one
    /// `cookie` names. `identity` names the query in the cookie. Returns the page's entries in
    /// key order and the next cookie.
    pub async fn page(
        &mut self,
        query: &str,
        identity: &str,
        attrs: &[String],
        size: usize,
        cookie: Option<&str>,
    ) -> ConnectorResult<(Vec<SearchEntry>, Option<String>)> {
        let (lower, rest) = match cookie {
            None => {
                let keys: Vec<String> = self
                    .search_all(query, &[KEY.to_owned()])
                    .await?
                    .iter()
                    .filter_map(key_of)
                    .collect();
                if keys.is_empty() {
                    return Ok((Vec::new(), None));
                }
                let b = bounds(keys, size);
                // The first page has no lower bound: nothing sorts before its first key.
                (None, b[1..].to_vec())
            }
            Some(c) => {
                let b = decode(c, identity)?;
                (Some(b[0].clone()), b[1..].to_vec())
            }
        };
        let filter = range_filter(query, lower.as_deref(), rest.first().map(String::as_str));
        let mut attrs = attrs.to_vec();
        if !attrs
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(KEY))
        {
            attrs.push(KEY.to_owned());
        }
        let mut entries = self.search_all(&filter, &attrs).await.map_err(|e| {
            match e {
                // A directory without an ordering rule on the key refuses the range filter.
                ConnectorError::BadRequest(m) => ConnectorError::BadRequest(format!(
                    "resumable paging needs an ordering match on {KEY} (OpenLDAP has one): {m}"
                )),
                other => other,
            }
        })?;
        entries.sort_by_cached_key(key_of);
        let next = (!rest.is_empty()).then(|| encode(identity, &rest));
        Ok((entries, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuid(n: u32) -> String {
        format!("{n:08x}-0000-4000-8000-000000000000")
    }

    #[test]
    fn pages_are_cut_every_page_size_of_the_sorted_keys() {
        let keys: Vec<String> = [5, 1, 4, 2, 3, 3].into_iter().map(uuid).collect();
        assert_eq!(bounds(keys.clone(), 2), vec![uuid(1), uuid(3), uuid(5)]);
        assert_eq!(bounds(keys, 10), vec![uuid(1)]);
    }

    #[test]
    fn a_cookie_round_trips_and_names_its_query() {
        let b = vec![uuid(3), uuid(5)];
        let c = encode("q1", &b);
        assert!(is_resumable(&c));
        assert_eq!(decode(&c, "q1").unwrap(), b);
        assert!(matches!(
            decode(&c, "q2"),
            Err(ConnectorError::BadRequest(_))
        ));
        for bad in [
            "r1.",
            "r1.!!",
            "x",
            &encode("q1", &[]),
            &encode("q1", &["*)(x=1".into()]),
        ] {
            assert!(decode(bad, "q1").is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_are_half_open() {
        assert_eq!(
            range_filter("(a=1)", None, Some("u2")),
            "(&(a=1)(!(entryUUID>=u2)))"
        );
        assert_eq!(
            range_filter("(a=1)", Some("u1"), None),
            "(&(a=1)(entryUUID>=u1))"
        );
    }
}
