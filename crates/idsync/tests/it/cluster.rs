//! The cluster (docs/operations.md#running-a-cluster) with three real `idsync serve` processes
//! sharing one PostgreSQL database: a clustered reconciliation spread over the nodes and surviving
//! a SIGKILL, cancel and the one-active-run rule from any node, and queued-sync locks that spread,
//! move off a dead node and go to a joining node.

use crate::server::{Server, send};
use crate::slapd::{Slapd, people_ldif};
use crate::support::{PgDatabase, Project, idsync, psql_query};
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

const MAPPING: &str = "systemHrAccounts_managedUser";

fn clustered_project(rows: u64) -> Project {
    let p = Project::copy_of("samples/clustered");
    let out = idsync()
        .args(["generate", "hr", "--rows", &rows.to_string(), "--out"])
        .arg(p.file("data/hr.csv"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p
}

fn node(p: &Project, db: &PgDatabase, id: &str) -> Server {
    Server::start_with(p.path(), &[], &["--repo", &db.url, "--node-id", id])
}

async fn total(s: &Server, path: &str) -> u64 {
    let (status, body) = s
        .get(&format!(
            "{path}?_queryFilter=true&_pageSize=1&_totalPagedResultsPolicy=EXACT"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body["totalPagedResults"].as_u64().unwrap()
}

async fn wait_for<F, Fut>(what: &str, limit: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn processed(s: &Server, id: &str) -> u64 {
    let (_, summary) = s.get(&format!("recon/{id}")).await;
    summary["progress"]["source"]["existing"]["processed"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clustered_run_spreads_over_the_nodes_and_survives_a_sigkill() {
    const ROWS: u64 = 50_000;
    let p = clustered_project(ROWS);
    let db = PgDatabase::create();
    let n1 = node(&p, &db, "node1");
    let n2 = node(&p, &db, "node2");
    let n3 = node(&p, &db, "node3");

    let (status, started) = n1
        .post(&format!("recon?_action=recon&mapping={MAPPING}"), None)
        .await;
    assert_eq!(status, 200, "{started}");
    let id = started["_id"].as_str().unwrap().to_string();

    // Progress is readable from another node while the run is active.
    wait_for(
        "a few pages done, seen from node 2",
        Duration::from_secs(300),
        || {
            let (n2, id) = (&n2, &id);
            async move { processed(n2, id).await >= 3_000 }
        },
    )
    .await;
    let (_, live) = n2.get(&format!("recon/{id}")).await;
    assert_eq!(live["state"], "ACTIVE", "{live:#}");

    drop(n3); // SIGKILL mid-run
    let killed = Instant::now();

    let summary = n1.wait_run(&id).await;
    assert_eq!(summary["state"], "SUCCESS", "{summary:#}");
    let by_node = summary["sourceProcessedByNode"].as_object().unwrap();
    assert!(by_node.len() >= 2, "pages on several nodes: {summary:#}");
    let sum: u64 = by_node.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(sum, ROWS, "every source row counted once: {summary:#}");
    assert_eq!(total(&n2, "managed/user").await, ROWS);
    assert_eq!(total(&n2, "repo/link").await, ROWS);
    assert_eq!(
        psql_query(
            &db.url,
            "SELECT count(*) - count(DISTINCT obj->>'userName') FROM objects WHERE object_type = 'user'"
        ),
        "0",
        "no duplicate users"
    );

    wait_for(
        "node3 shown STATE_DOWN within 15 s of its SIGKILL",
        Duration::from_secs(15).saturating_sub(killed.elapsed()),
        || async {
            let (_, n) = n1.get("cluster/node3").await;
            n["state"] == "STATE_DOWN"
        },
    )
    .await;
}

/// A clustered run of an LDAP source over three nodes, one of them SIGKILLed mid-run. An LDAP
/// paged-results cookie lives in one connection of one process; the run's pages are
/// `entryUUID` ranges instead (docs/connectors.md), which any node continues and a page re-run
/// reads again alike — so the run ends SUCCESS with every entry once.
#[tokio::test(flavor = "multi_thread")]
async fn a_clustered_ldap_source_survives_a_sigkill_with_every_entry_once() {
    const ENTRIES: u64 = 3_000;
    const LDAP_MAPPING: &str = "systemLdapAccounts_managedUser";
    let s = Slapd::start_with(&people_ldif(ENTRIES as usize));
    let sync = json!({"mappings": [{
        "name": LDAP_MAPPING,
        "source": "system/ldap/account",
        "target": "managed/user",
        "clusteredSourceReconEnabled": true,
        "reconSourceQueryPageSize": 100,
        // 2 ms per entry: the run lasts long enough to lose a node in the middle.
        "validSource": {"type": "text/javascript",
                        "source": "var t = Date.now(); while (Date.now() - t < 2) {} true"},
        "correlationQuery": {"type": "text/javascript",
                             "source": "({'_queryFilter': 'userName eq \"' + source.uid + '\"'})"},
        "properties": [
            {"source": "uid", "target": "userName"},
            {"source": "cn", "target": "cn"},
            {"source": "mail", "target": "mail"}
        ],
        "policies": [
            {"situation": "ABSENT", "action": "CREATE"},
            {"situation": "CONFIRMED", "action": "UPDATE"},
            {"situation": "FOUND", "action": "UPDATE"},
            {"situation": "FOUND_ALREADY_LINKED", "action": "EXCEPTION"},
            {"situation": "AMBIGUOUS", "action": "EXCEPTION"}
        ]
    }]});
    let p = crate::serve_ldap::project(&s, &sync);
    let db = PgDatabase::create();
    let n1 = node(&p, &db, "node1");
    let n2 = node(&p, &db, "node2");
    let n3 = node(&p, &db, "node3");

    let (status, started) = n1
        .post(&format!("recon?_action=recon&mapping={LDAP_MAPPING}"), None)
        .await;
    assert_eq!(status, 200, "{started}");
    let id = started["_id"].as_str().unwrap().to_string();
    wait_for("some pages done", Duration::from_secs(300), || {
        let (n2, id) = (&n2, &id);
        async move { processed(n2, id).await >= 500 }
    })
    .await;
    drop(n3); // SIGKILL mid-run

    let summary = n1.wait_run(&id).await;
    assert_eq!(summary["state"], "SUCCESS", "{summary:#}");
    let by_node = summary["sourceProcessedByNode"].as_object().unwrap();
    assert!(by_node.len() >= 2, "pages on several nodes: {summary:#}");
    let sum: u64 = by_node.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(sum, ENTRIES, "every entry counted once: {summary:#}");
    assert_eq!(
        summary["progress"]["source"]["existing"]["total"],
        ENTRIES.to_string(),
        "the true total once the last page is in: {summary:#}"
    );
    assert_eq!(summary["statusSummary"]["FAILURE"], 0, "{summary:#}");
    assert_eq!(total(&n2, "managed/user").await, ENTRIES);
    assert_eq!(total(&n2, "repo/link").await, ENTRIES);
    assert_eq!(
        psql_query(
            &db.url,
            "SELECT count(*) - count(DISTINCT obj->>'userName') FROM objects WHERE object_type = 'user'"
        ),
        "0",
        "no duplicate users"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn any_node_cancels_and_one_run_per_mapping_holds_cluster_wide() {
    let p = clustered_project(300_000);
    let db = PgDatabase::create();
    let n1 = node(&p, &db, "node1");
    let n2 = node(&p, &db, "node2");
    let n3 = node(&p, &db, "node3");
    let start = format!("recon?_action=recon&mapping={MAPPING}");
    let (status, started) = n1.post(&start, None).await;
    assert_eq!(status, 200, "{started}");
    let id = started["_id"].as_str().unwrap().to_string();

    let (status, refused) = n2.post(&start, None).await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains(&id),
        "{refused}"
    );

    let (status, canceled) = n3.post(&format!("recon/{id}?_action=cancel"), None).await;
    assert_eq!(status, 200, "{canceled}");
    let summary = n1.wait_run(&id).await;
    assert_eq!(summary["state"], "CANCELED", "{summary:#}");
    assert_eq!(summary["stage"], "COMPLETED_CANCELED");
}

/// A project with two queued mappings from `managed/user` to two PostgreSQL tables; the first
/// target is slow (an onCreate script that takes `slow_ms`).
fn queued_project(db: &PgDatabase, slow_ms: u64) -> Project {
    psql_query(
        &db.url,
        "CREATE TABLE a_accounts (id text PRIMARY KEY, username text); \
         CREATE TABLE b_accounts (id text PRIMARY KEY, username text)",
    );
    let p = Project {
        dir: tempfile::tempdir().unwrap(),
    };
    p.write(
        "conf/managed.json",
        r#"{"objects":[{"name":"user","schema":{}}]}"#,
    );
    for t in ["a", "b"] {
        p.write(
            &format!("conf/provisioner.openicf-{t}.json"),
            &json!({
                "name": t,
                "connectorRef": {"connectorName": "org.identityconnectors.databasetable.DatabaseTableConnector"},
                "configurationProperties": {"url": db.url, "table": format!("{t}_accounts"), "keyColumn": "id"},
                "objectTypes": {"account": {"nativeType": "__ACCOUNT__", "properties": {
                    "id": {"type": "string", "nativeName": "__NAME__"},
                    "username": {"type": "string", "nativeName": "username"}
                }}}
            })
            .to_string(),
        );
    }
    let mapping = |t: &str, on_create: Option<String>| {
        let mut m = json!({
            "name": format!("managedUser_{t}"),
            "source": "managed/user",
            "target": format!("system/{t}/account"),
            "queuedSync": {"enabled": true, "pollingInterval": 50, "retryDelay": 100},
            "correlationQuery": {"type": "text/javascript",
                "source": "({'_queryFilter': 'id eq \"' + source._id + '\"'})"},
            "properties": [
                {"source": "_id", "target": "id"},
                {"source": "userName", "target": "username"}
            ],
            "policies": [
                {"situation": "ABSENT", "action": "CREATE"},
                {"situation": "FOUND", "action": "LINK"},
                {"situation": "CONFIRMED", "action": "UPDATE"}
            ]
        });
        if let Some(src) = on_create {
            m["onCreate"] = json!({"type": "text/javascript", "source": src});
        }
        m
    };
    let slow = format!("var t = Date.now(); while (Date.now() - t < {slow_ms}) {{}} target;");
    p.write(
        "conf/sync.json",
        &json!({
            "mappings": [mapping("a", Some(slow)), mapping("b", None)],
            "queueBalancing": {"enabled": true, "balanceInterval": 1},
            "queueRecovery": {"enabled": true, "recoveryInterval": 300}
        })
        .to_string(),
    );
    p
}

/// Queue lock holders by mapping, read from the repository.
fn lock_holders(db: &PgDatabase) -> Vec<(String, String)> {
    psql_query(&db.url, "SELECT name, node_id FROM locks ORDER BY name")
        .lines()
        .filter_map(|l| l.split_once('|'))
        .filter(|(n, _)| n.starts_with("sync-queue/"))
        .map(|(n, h)| (n.to_string(), h.to_string()))
        .collect()
}

fn holder_of(db: &PgDatabase, mapping: &str) -> Option<String> {
    lock_holders(db)
        .into_iter()
        .find(|(n, _)| n == &format!("sync-queue/{mapping}"))
        .map(|(_, h)| h)
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_locks_spread_move_off_a_dead_node_and_reach_a_joining_node() {
    const USERS: usize = 150;
    let db = PgDatabase::create();
    let p = queued_project(&db, 40);
    let env = [
        ("IDSYNC_HEARTBEAT_INTERVAL_MS", "500"),
        ("IDSYNC_NODE_TIMEOUT_MS", "5000"),
    ];
    let start =
        |id: &str| Server::start_with(p.path(), &env, &["--repo", &db.url, "--node-id", id]);
    let mut nodes = std::collections::BTreeMap::new();
    nodes.insert("node1".to_string(), start("node1"));
    wait_for(
        "node1 holds both locks",
        Duration::from_secs(30),
        || async { lock_holders(&db).len() == 2 },
    )
    .await;

    // A joining node takes a lock within the balance interval (1 s here) and a bit.
    nodes.insert("node2".to_string(), start("node2"));
    wait_for(
        "the locks spread over two nodes",
        Duration::from_secs(20),
        || async {
            let holders: std::collections::HashSet<String> =
                lock_holders(&db).into_iter().map(|(_, h)| h).collect();
            holders.len() == 2
        },
    )
    .await;
    nodes.insert("node3".to_string(), start("node3"));

    // Changes to both mappings; the slow one is still working when its holder dies.
    let s = &nodes["node3"];
    for i in 0..USERS {
        let (status, body) = send(
            s.admin(Method::POST, "managed/user?_action=create")
                .json(&json!({"userName": format!("u{i}")})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let victim = holder_of(&db, "managedUser_a").unwrap();
    let count_a = || psql_query(&db.url, "SELECT count(*) FROM a_accounts");
    wait_for("some slow deliveries", Duration::from_secs(60), || async {
        count_a().parse::<usize>().unwrap() >= 10
    })
    .await;
    assert!(count_a().parse::<usize>().unwrap() < USERS, "still working");
    drop(nodes.remove(&victim)); // SIGKILL the holder of the slow mapping's lock

    wait_for(
        "the lock moved to a live node",
        Duration::from_secs(30),
        || async { holder_of(&db, "managedUser_a").is_some_and(|h| h != victim) },
    )
    .await;
    let survivor = nodes.values().next().unwrap();
    wait_for(
        "every event delivered",
        Duration::from_secs(120),
        || async {
            let (_, q) = survivor.get("sync/queue?_queryFilter=true").await;
            q["resultCount"] == 0
        },
    )
    .await;
    for t in ["a", "b"] {
        assert_eq!(
            psql_query(&db.url, &format!("SELECT count(*) FROM {t}_accounts")),
            USERS.to_string(),
            "every user in {t}"
        );
    }
    // Nothing ran twice after its success was committed: exactly one committed decision per
    // user and mapping (a second run would add a CONFIRMED entry; the killed node's uncommitted
    // event re-ran as FOUND → LINK thanks to the correlation query).
    let (_, audit) = survivor
        .get("audit/sync?_queryFilter=status+eq+%22SUCCESS%22&_pageSize=1&_totalPagedResultsPolicy=EXACT")
        .await;
    assert_eq!(audit["totalPagedResults"], json!(2 * USERS), "{audit:#}");
}
