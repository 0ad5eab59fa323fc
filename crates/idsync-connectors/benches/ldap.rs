//! LDAP connector benchmark against a private slapd (release build):
//! - a paged read of 100k entries (loaded offline with `slapadd -q`) through the connector,
//!   next to the same paged search written directly with ldap3;
//! - 100k adds through the connector with N concurrent operations (N = 8, 32), next to a plain
//!   ldap3 loop over N connections, each on a fresh empty slapd, reported as a ratio.
//!
//! Run: `cargo bench -p idsync-connectors --bench ldap` (env `LDAP_BENCH_N` overrides 100000,
//! `LDAP_BENCH_ROUNDS` the 3 add rounds, `LDAP_BENCH_ONLY=read` skips the adds).

#[path = "../tests/support/slapd.rs"]
mod slapd;

use idsync_connectors::ObjectSet;
use idsync_connectors::ldap::LdapConnector;
use idsync_core::QueryRequest;
use ldap3::controls::{ControlType, PagedResults};
use ldap3::{LdapConnAsync, Scope};
use serde_json::{Value, json};
use slapd::{ADMIN_DN, ADMIN_PW, PEOPLE, SUFFIX, Slapd};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

fn provisioner(s: &Slapd, pool: usize) -> Value {
    let mut props: Value =
        serde_json::from_str(&s.configuration_properties()).expect("harness properties are JSON");
    props["connectionPoolSize"] = json!(pool);
    props["blockSize"] = json!(1000);
    json!({
        "configurationProperties": props,
        "objectTypes": {"account": {"nativeType": "__ACCOUNT__", "properties": {
            "dn": {"type": "string", "nativeName": "__NAME__"},
            "uid": {"type": "string", "nativeName": "uid"},
            "cn": {"type": "string", "nativeName": "cn"},
            "sn": {"type": "string", "nativeName": "sn"},
            "givenName": {"type": "string", "nativeName": "givenName"},
            "mail": {"type": "string", "nativeName": "mail"}
        }}}
    })
}

fn person(i: usize) -> Value {
    json!({"dn": format!("uid=user{i},{PEOPLE}"), "uid": format!("user{i}"),
           "cn": format!("User {i}"), "sn": format!("Number{i}"), "givenName": "User",
           "mail": format!("user{i}@example.com")})
}

fn raw_person(i: usize) -> (String, Vec<(String, HashSet<String>)>) {
    let one = |v: String| HashSet::from([v]);
    (
        format!("uid=user{i},{PEOPLE}"),
        vec![
            (
                "objectClass".into(),
                ["top", "person", "organizationalPerson", "inetOrgPerson"]
                    .map(String::from)
                    .into(),
            ),
            ("uid".into(), one(format!("user{i}"))),
            ("cn".into(), one(format!("User {i}"))),
            ("sn".into(), one(format!("Number{i}"))),
            ("givenName".into(), one("User".into())),
            ("mail".into(), one(format!("user{i}@example.com"))),
        ],
    )
}

async fn connector_read(s: &Slapd, page: usize) -> usize {
    let c = LdapConnector::from_provisioner("ldap", &provisioner(s, 8)).expect("config");
    let set = idsync_connectors::Connector::object_set(&c, "account").expect("account");
    let (mut n, mut cookie) = (0, None);
    loop {
        let mut req = QueryRequest::all();
        req.page_size = Some(page);
        req.cookie = cookie;
        let p = set.query(&req).await.expect("page");
        n += p.results.len();
        cookie = p.cookie;
        if cookie.is_none() {
            return n;
        }
    }
}

async fn ldap3_read(s: &Slapd, page: i32) -> usize {
    let (conn, mut ldap) = LdapConnAsync::new(&s.url()).await.expect("connect");
    tokio::spawn(conn.drive());
    ldap.simple_bind(ADMIN_DN, ADMIN_PW)
        .await
        .expect("bind")
        .success()
        .expect("bind ok");
    let attrs = vec!["entryUUID", "uid", "cn", "sn", "givenName", "mail"];
    let filter = "(&(objectClass=top)(objectClass=person)(objectClass=organizationalPerson)(objectClass=inetOrgPerson)(objectClass=*))";
    let (mut n, mut cookie) = (0, Vec::new());
    loop {
        let res = ldap
            .with_controls(PagedResults { size: page, cookie })
            .search(SUFFIX, Scope::Subtree, filter, &attrs)
            .await
            .expect("search");
        let (entries, result) = res.success().expect("search ok");
        for e in entries {
            std::hint::black_box(ldap3::SearchEntry::construct(e));
            n += 1;
        }
        cookie = result
            .ctrls
            .iter()
            .find(|c| matches!(c.0, Some(ControlType::PagedResults)))
            .map(|c| c.1.parse::<PagedResults>().cookie)
            .unwrap_or_default();
        if cookie.is_empty() {
            return n;
        }
    }
}

async fn connector_adds(s: &Slapd, total: usize, n: usize) -> f64 {
    let c = LdapConnector::from_provisioner("ldap", &provisioner(s, n)).expect("config");
    let set: Arc<dyn ObjectSet> =
        idsync_connectors::Connector::object_set(&c, "account").expect("account");
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (set, next) = (set.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return;
                }
                set.create(None, person(i)).await.expect("create");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    start.elapsed().as_secs_f64()
}

async fn ldap3_adds(s: &Slapd, total: usize, n: usize) -> f64 {
    let mut conns = Vec::new();
    for _ in 0..n {
        let (conn, mut ldap) = LdapConnAsync::new(&s.url()).await.expect("connect");
        tokio::spawn(conn.drive());
        ldap.simple_bind(ADMIN_DN, ADMIN_PW)
            .await
            .expect("bind")
            .success()
            .expect("bind ok");
        conns.push(ldap);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for mut ldap in conns {
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return;
                }
                let (dn, attrs) = raw_person(i);
                ldap.add(&dn, attrs)
                    .await
                    .expect("add")
                    .success()
                    .expect("add ok");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    start.elapsed().as_secs_f64()
}

fn main() {
    let total: usize = std::env::var("LDAP_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let t = Instant::now();
        let s = Slapd::start_with(&slapd::people_ldif(total));
        println!("slapadd -q of {total} entries + start: {:.2} s", t.elapsed().as_secs_f64());
        for page in [1000usize, 100] {
            let t = Instant::now();
            let n = ldap3_read(&s, page as i32).await;
            let raw = t.elapsed().as_secs_f64();
            assert_eq!(n, total);
            let t = Instant::now();
            let n = connector_read(&s, page).await;
            let ours = t.elapsed().as_secs_f64();
            assert_eq!(n, total);
            println!(
                "paged read, page {page}: connector {:.2} s ({:.0}/s), ldap3 {:.2} s ({:.0}/s), ratio {:.2}",
                ours,
                total as f64 / ours,
                raw,
                total as f64 / raw,
                raw / ours
            );
        }
        drop(s);
        if std::env::var("LDAP_BENCH_ONLY").is_ok_and(|v| v == "read") {
            return;
        }

        // The machine is shared: alternate the two sides over several rounds and keep each
        // side's best time, so background load does not favour either.
        let rounds: usize =
            std::env::var("LDAP_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
        for n in [8usize, 32] {
            let (mut best_raw, mut best_ours) = (f64::MAX, f64::MAX);
            for round in 0..rounds {
                let s = Slapd::start();
                let raw = ldap3_adds(&s, total, n).await;
                drop(s);
                let s = Slapd::start();
                let ours = connector_adds(&s, total, n).await;
                drop(s);
                println!(
                    "  round {round}: {total} adds, N={n}: connector {ours:.2} s, ldap3 {raw:.2} s"
                );
                best_raw = best_raw.min(raw);
                best_ours = best_ours.min(ours);
            }
            println!(
                "{total} adds, N={n} (best of {rounds}): connector {:.2} s ({:.0}/s), ldap3 {:.2} s ({:.0}/s), ratio {:.2}",
                best_ours,
                total as f64 / best_ours,
                best_raw,
                total as f64 / best_raw,
                best_raw / best_ours
            );
        }
    });
}
