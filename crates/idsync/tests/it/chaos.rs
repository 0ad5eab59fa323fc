//! The chaos test (docs/operations.md#running-a-cluster): three `idsync serve` nodes on a
//! private PostgreSQL server that the test owns, running at once
//!
//! - a clustered recon of generated HR rows (CSV) into `managed/user`,
//! - a clustered recon of other CSV rows into `system/ldap/account` in a real slapd,
//! - a stream of managed-object changes (`managed/device`, each object changed several times
//!   with a sequence number) through a queued mapping into a PostgreSQL table,
//!
//! while faults hit them: three SIGKILLs of a node (each restarted with its node id), one
//! restart of PostgreSQL and one stop/start of slapd (during the LDAP run). At the end both runs
//! are SUCCESS, every source is in its target exactly once, the links are the objects, the
//! summaries' counts are the objects, and every queued change was applied once and in order.
//!
//! Seeded and repeatable: `IDSYNC_CHAOS_SEED` (printed at the start) decides the order of the
//! faults, the node each kill hits and when, and when and how long slapd is down. Sizes:
//! `IDSYNC_CHAOS_ROWS` (HR rows, default 5,000), `IDSYNC_CHAOS_LDAP_ROWS` (default 1,000),
//! `IDSYNC_CHAOS_CHANGES` (queued changes, default 400, over 20 devices), `IDSYNC_CHAOS_ROW_MS`
//! (a per-row busy wait in the HR mapping's `validSource` so that the runs last long enough to be
//! hit, default 2; the LDAP mapping's is scaled so that both runs last alike). The large run of
//! BENCHMARKS.md is this test with `IDSYNC_CHAOS_ROWS=50000 IDSYNC_CHAOS_LDAP_ROWS=5000
//! IDSYNC_CHAOS_ROW_MS=1`.

use crate::private_pg::PrivatePg;
use crate::server::{ADMIN_TOKEN, Server};
use crate::slapd::{ADMIN_DN, ADMIN_PW, PEOPLE, Slapd};
use crate::splitmix::SplitMix;
use crate::support::{Project, csv_rows, idsync, psql_query};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HR_MAPPING: &str = "systemHrAccounts_managedUser";
const LDAP_MAPPING: &str = "systemPeopleAccounts_ldapAccount";
const QUEUED_MAPPING: &str = "managedDevice_sqlDevice";
const DEVICES: usize = 20;
const NODES: [&str; 3] = ["node1", "node2", "node3"];
/// The bound of every wait: a hang becomes a failure with this message, not a timing claim.
const LIMIT: Duration = Duration::from_secs(900);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    Kill,
    RestartPostgres,
}

fn generate(p: &Project, rel: &str, rows: u64) {
    let out = idsync()
        .args(["generate", "hr", "--rows", &rows.to_string(), "--out"])
        .arg(p.file(rel))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn busy_wait(ms: u64) -> Value {
    json!({"type": "text/javascript",
           "source": format!("var t = Date.now(); while (Date.now() - t < {ms}) {{}} true")})
}

/// `samples/clustered` plus a second CSV source, the LDAP connector, a SQL table connector and a
/// `device` managed type, with the three mappings.
fn chaos_project(pg: &PrivatePg, slapd: &Slapd, rows: u64, ldap_rows: u64, row_ms: u64) -> Project {
    let p = Project::copy_of("samples/clustered");
    generate(&p, "data/hr.csv", rows);
    generate(&p, "data/people.csv", ldap_rows);
    p.write(
        "conf/idsync.json",
        &json!({"heartbeatIntervalMs": 500, "nodeTimeoutMs": 5000, "leaseMs": 10000,
                "maxConcurrentJobs": 2})
        .to_string(),
    );
    let mut people: Value =
        serde_json::from_str(&p.read("conf/provisioner.openicf-hr.json")).unwrap();
    people["name"] = json!("people");
    people["configurationProperties"]["csvFile"] = json!("data/people.csv");
    p.write("conf/provisioner.openicf-people.json", &people.to_string());
    p.write(
        "conf/provisioner.openicf-ldap.json",
        &crate::serve_ldap::provisioner(slapd).to_string(),
    );
    p.write(
        "conf/provisioner.openicf-sql.json",
        &json!({
            "name": "sql",
            "connectorRef": {"connectorName": "org.identityconnectors.databasetable.DatabaseTableConnector"},
            "configurationProperties": {"url": pg.url, "table": "devices", "keyColumn": "id"},
            "objectTypes": {"device": {"nativeType": "__ACCOUNT__", "properties": {
                "id": {"type": "string", "nativeName": "__NAME__"},
                "name": {"type": "string", "nativeName": "name"},
                "seq": {"type": "string", "nativeName": "seq"}
            }}}
        })
        .to_string(),
    );
    let mut managed: Value = serde_json::from_str(&p.read("conf/managed.json")).unwrap();
    managed["objects"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "device", "schema": {}}));
    p.write("conf/managed.json", &managed.to_string());

    let mut sync: Value = serde_json::from_str(&p.read("conf/sync.json")).unwrap();
    let hr = &mut sync["mappings"][0];
    assert_eq!(hr["name"], HR_MAPPING);
    hr["reconSourceQueryPageSize"] = json!(250);
    if row_ms > 0 {
        hr["validSource"] = busy_wait(row_ms);
    }
    // Both runs last about as long: the LDAP rows wait longer each when there are fewer.
    let ldap_ms = row_ms * rows / ldap_rows.max(1);
    let mut ldap = json!({
        "name": LDAP_MAPPING,
        "source": "system/people/account",
        "target": "system/ldap/account",
        "clusteredSourceReconEnabled": true,
        "reconSourceQueryPageSize": 100,
        "correlationQuery": {"type": "text/javascript",
            "source": "({'_queryFilter': 'uid eq \"' + source.userName + '\"'})"},
        "properties": [
            {"source": "userName", "target": "dn", "transform": {"type": "text/javascript",
                "source": format!("'uid=' + source + ',{PEOPLE}'")}},
            {"source": "userName", "target": "uid"},
            {"source": "userName", "target": "cn"},
            {"source": "sn", "target": "sn"},
            {"source": "givenName", "target": "givenName"},
            {"source": "mail", "target": "mail"}
        ],
        "policies": [
            {"situation": "ABSENT", "action": "CREATE"},
            {"situation": "FOUND", "action": "UPDATE"},
            {"situation": "CONFIRMED", "action": "UPDATE"},
            {"situation": "MISSING", "action": "CREATE"},
            {"situation": "AMBIGUOUS", "action": "EXCEPTION"},
            {"situation": "FOUND_ALREADY_LINKED", "action": "EXCEPTION"}
        ]
    });
    if ldap_ms > 0 {
        ldap["validSource"] = busy_wait(ldap_ms);
    }
    let queued = json!({
        "name": QUEUED_MAPPING,
        "source": "managed/device",
        "target": "system/sql/device",
        "queuedSync": {"enabled": true, "pollingInterval": 50, "retryDelay": 200,
                       "maxRetries": -1, "workers": 4},
        "correlationQuery": {"type": "text/javascript",
            "source": "({'_queryFilter': 'id eq \"' + source._id + '\"'})"},
        "properties": [
            {"source": "_id", "target": "id"},
            {"source": "name", "target": "name"},
            {"source": "seq", "target": "seq",
             "transform": {"type": "text/javascript", "source": "String(source)"}}
        ],
        "policies": [
            {"situation": "ABSENT", "action": "CREATE"},
            {"situation": "FOUND", "action": "UPDATE"},
            {"situation": "CONFIRMED", "action": "UPDATE"},
            {"situation": "MISSING", "action": "CREATE"}
        ]
    });
    let mappings = sync["mappings"].as_array_mut().unwrap();
    mappings.push(ldap);
    mappings.push(queued);
    p.write("conf/sync.json", &sync.to_string());
    p
}

/// The queued mapping's target table, and beside it the history of every value its rows took:
/// a trigger appends `(id, seq)` on insert and on each update that changes `seq`, so a change
/// applied twice or out of order shows there.
fn create_device_tables(pg: &PrivatePg) {
    psql_query(
        &pg.url,
        "CREATE TABLE devices (id text PRIMARY KEY, name text, seq text); \
         CREATE TABLE device_history (n bigserial PRIMARY KEY, id text NOT NULL, seq text); \
         CREATE FUNCTION log_seq() RETURNS trigger LANGUAGE plpgsql AS \
           $$ BEGIN INSERT INTO device_history (id, seq) VALUES (NEW.id, NEW.seq); RETURN NEW; END $$; \
         CREATE TRIGGER devices_ins AFTER INSERT ON devices FOR EACH ROW EXECUTE FUNCTION log_seq(); \
         CREATE TRIGGER devices_upd AFTER UPDATE ON devices FOR EACH ROW \
           WHEN (OLD.seq IS DISTINCT FROM NEW.seq) EXECUTE FUNCTION log_seq();",
    );
}

/// The live nodes' base URLs, shared with the change stream (a restarted node has a new port).
type Bases = Arc<Mutex<BTreeMap<String, String>>>;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// One request to any live node; `None` when it failed to connect or answered 5xx (a node
/// being killed, PostgreSQL restarting), so that the caller tries again.
async fn try_send(
    http: &reqwest::Client,
    bases: &Bases,
    pick: u64,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> Option<(u16, Value)> {
    let base = {
        let b = bases.lock().unwrap();
        if b.is_empty() {
            return None;
        }
        b.values().nth((pick as usize) % b.len()).unwrap().clone()
    };
    let mut req = http
        .request(method, format!("{base}/openidm/{path}"))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.ok()?;
    let status = resp.status().as_u16();
    let text = resp.text().await.ok()?;
    if status >= 500 {
        return None;
    }
    Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// GET from any live node, retried through faults until `LIMIT`.
async fn get(http: &reqwest::Client, bases: &Bases, path: &str) -> Value {
    let deadline = Instant::now() + LIMIT;
    let mut pick = 0;
    loop {
        if let Some((status, body)) =
            try_send(http, bases, pick, reqwest::Method::GET, path, None).await
        {
            assert_eq!(status, 200, "GET {path}: {body}");
            return body;
        }
        pick += 1;
        assert!(
            Instant::now() < deadline,
            "GET {path} failed until {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sets device `id`'s `seq` to `seq` exactly once: a request that failed (node killed,
/// PostgreSQL restarting) may or may not have committed, so the device is read before trying
/// again — a committed change is never sent twice. Returns how many requests failed.
async fn set_seq(http: &reqwest::Client, bases: &Bases, id: &str, seq: u64, pick: u64) -> u64 {
    let deadline = Instant::now() + LIMIT;
    let patch = json!([{"operation": "replace", "field": "/seq", "value": seq}]);
    let first = pick;
    let mut pick = pick;
    loop {
        match try_send(
            http,
            bases,
            pick,
            reqwest::Method::PATCH,
            &format!("managed/device/{id}"),
            Some(&patch),
        )
        .await
        {
            Some((200, _)) => return pick - first,
            Some((status, body)) => panic!("PATCH managed/device/{id}: {status} {body}"),
            None => {
                let now = get(http, bases, &format!("managed/device/{id}")).await;
                if now["seq"] == json!(seq) {
                    return pick + 1 - first;
                }
                assert_eq!(now["seq"], json!(seq - 1), "device {id}: {now}");
            }
        }
        pick += 1;
        assert!(
            Instant::now() < deadline,
            "PATCH {id} failed until {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn processed(summary: &Value) -> u64 {
    summary["progress"]["source"]["existing"]["processed"]
        .as_u64()
        .unwrap_or(0)
}

fn node(p: &Project, pg: &PrivatePg, id: &str) -> Server {
    Server::start_with(p.path(), &[], &["--repo", &pg.url, "--node-id", id])
}

/// uid → entryUUID of every entry under `ou=People`, read with `ldapsearch`.
fn ldap_people(slapd: &Slapd) -> Vec<(String, String)> {
    let out = std::process::Command::new("ldapsearch")
        .args([
            "-x",
            "-o",
            "ldif-wrap=no",
            "-H",
            &slapd.url(),
            "-D",
            ADMIN_DN,
            "-w",
            ADMIN_PW,
        ])
        .args([
            "-b",
            PEOPLE,
            "-s",
            "one",
            "-LLL",
            "(objectClass=inetOrgPerson)",
        ])
        .args(["uid", "entryUUID"])
        .output()
        .expect("ldapsearch (Debian package ldap-utils)");
    assert!(
        out.status.success(),
        "ldapsearch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let attr = |name: &str| {
                e.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                    .unwrap_or_else(|| panic!("no {name} in {e}"))
                    .to_lowercase()
            };
            (attr("uid"), attr("entryUUID"))
        })
        .collect()
}

fn set_of(text: String) -> BTreeSet<String> {
    text.lines().map(|l| l.to_lowercase()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_survive_kills_and_restarts_with_every_object_once() {
    let seed = env_or("IDSYNC_CHAOS_SEED", 20);
    let rows = env_or("IDSYNC_CHAOS_ROWS", 5_000);
    let ldap_rows = env_or("IDSYNC_CHAOS_LDAP_ROWS", 1_000);
    let changes = env_or("IDSYNC_CHAOS_CHANGES", 400);
    let row_ms = env_or("IDSYNC_CHAOS_ROW_MS", 2);
    let rounds = (changes / DEVICES as u64).max(2);
    eprintln!(
        "chaos: IDSYNC_CHAOS_SEED={seed} IDSYNC_CHAOS_ROWS={rows} IDSYNC_CHAOS_LDAP_ROWS={ldap_rows} \
         IDSYNC_CHAOS_CHANGES={} IDSYNC_CHAOS_ROW_MS={row_ms}",
        rounds * DEVICES as u64
    );
    let mut rng = SplitMix(seed);
    let mut faults = vec![
        Fault::Kill,
        Fault::Kill,
        Fault::Kill,
        Fault::RestartPostgres,
    ];
    for i in (1..faults.len()).rev() {
        faults.swap(i, rng.below(i as u64 + 1) as usize);
    }
    // slapd's stop/start comes beside them, at its own point of the LDAP run (which is shorter).
    let slapd_point = 0.2 + rng.below(600) as f64 / 1000.0;
    let slapd_pause = Duration::from_millis(500 + rng.below(1_500));
    eprintln!(
        "chaos: faults in order {faults:?}; slapd stopped for {slapd_pause:?} at {:.0}% of the LDAP run",
        slapd_point * 100.0
    );

    let started = Instant::now();
    let pg = PrivatePg::start();
    eprintln!("chaos: private PostgreSQL on 127.0.0.1:{}", pg.port());
    let slapd = Slapd::start();
    create_device_tables(&pg);
    let p = chaos_project(&pg, &slapd, rows, ldap_rows, row_ms);
    let mut nodes: BTreeMap<String, Server> = NODES
        .iter()
        .map(|id| (id.to_string(), node(&p, &pg, id)))
        .collect();
    let bases: Bases = Arc::new(Mutex::new(
        nodes
            .iter()
            .map(|(id, s)| (id.clone(), s.base().to_string()))
            .collect(),
    ));
    let http = client();

    // The devices exist before any fault: their creation is not ambiguous.
    let mut devices = Vec::new();
    for i in 0..DEVICES {
        let (status, body) = try_send(
            &http,
            &bases,
            i as u64,
            reqwest::Method::POST,
            "managed/device?_action=create",
            Some(&json!({"name": format!("device{i}"), "seq": 0})),
        )
        .await
        .expect("create a device");
        assert_eq!(status, 201, "{body}");
        devices.push(body["_id"].as_str().unwrap().to_string());
    }

    let mut run_ids = Vec::new();
    for (i, m) in [HR_MAPPING, LDAP_MAPPING].into_iter().enumerate() {
        let (status, body) = try_send(
            &http,
            &bases,
            i as u64,
            reqwest::Method::POST,
            &format!("recon?_action=recon&mapping={m}"),
            None,
        )
        .await
        .expect("start a run");
        assert_eq!(status, 200, "{body}");
        run_ids.push(body["_id"].as_str().unwrap().to_string());
    }

    // The change stream: round r sets every device's seq to r, from any live node. The rounds
    // are spread over the faults: round r waits until r/rounds of the faults were injected.
    let faults_done = Arc::new(AtomicUsize::new(0));
    let retried = Arc::new(AtomicU64::new(0));
    let stream = {
        let (http, bases, devices) = (http.clone(), bases.clone(), devices.clone());
        let (faults_done, retried, n_faults) = (faults_done.clone(), retried.clone(), faults.len());
        let pick0 = rng.below(1_000);
        tokio::spawn(async move {
            for r in 1..rounds {
                let gate = (r as usize * n_faults) / rounds as usize;
                let deadline = Instant::now() + LIMIT;
                while faults_done.load(Ordering::SeqCst) < gate {
                    assert!(Instant::now() < deadline, "fault {gate} never came");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                for (i, d) in devices.iter().enumerate() {
                    let tries = set_seq(&http, &bases, d, r, pick0 + r + i as u64).await;
                    retried.fetch_add(tries, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let bounce = {
        let (http, bases, run) = (http.clone(), bases.clone(), run_ids[1].clone());
        let mut slapd = slapd;
        tokio::spawn(async move {
            let deadline = Instant::now() + LIMIT;
            loop {
                let s = get(&http, &bases, &format!("recon/{run}")).await;
                if s["state"] != "ACTIVE" {
                    eprintln!("chaos: the LDAP run ended before slapd's stop: raise the sizes");
                    break;
                }
                if processed(&s) as f64 / ldap_rows.max(1) as f64 >= slapd_point {
                    break;
                }
                assert!(Instant::now() < deadline, "LDAP run stuck: {s:#}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            slapd.stop();
            tokio::time::sleep(slapd_pause).await;
            slapd.restart();
            eprintln!("chaos: {:?} slapd stopped and started", started.elapsed());
            slapd
        })
    };

    // The faults, each when the runs' joint progress passes its seeded point.
    let total = (rows + ldap_rows) as f64;
    let mut after_runs = Vec::new();
    for (k, fault) in faults.iter().enumerate() {
        let point = (k as f64 + 1.0) / (faults.len() as f64 + 1.0)
            + (rng.below(100) as f64 - 50.0) / 1000.0;
        let deadline = Instant::now() + LIMIT;
        let active = loop {
            let s1 = get(&http, &bases, &format!("recon/{}", run_ids[0])).await;
            let s2 = get(&http, &bases, &format!("recon/{}", run_ids[1])).await;
            let active = s1["state"] == "ACTIVE" || s2["state"] == "ACTIVE";
            let progress = (processed(&s1) + processed(&s2)) as f64 / total;
            if !active || progress >= point {
                break active;
            }
            assert!(
                Instant::now() < deadline,
                "runs stuck before fault {k}: {s1:#} {s2:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if !active {
            after_runs.push(*fault);
        }
        let at = started.elapsed();
        match fault {
            Fault::Kill => {
                let victim = NODES[rng.below(NODES.len() as u64) as usize];
                bases.lock().unwrap().remove(victim);
                drop(nodes.remove(victim)); // SIGKILL
                tokio::time::sleep(Duration::from_millis(rng.below(2_000))).await;
                let s = node(&p, &pg, victim);
                bases
                    .lock()
                    .unwrap()
                    .insert(victim.to_string(), s.base().to_string());
                nodes.insert(victim.to_string(), s);
                eprintln!("chaos: {at:?} SIGKILL {victim}, restarted");
            }
            Fault::RestartPostgres => {
                pg.restart();
                eprintln!("chaos: {at:?} PostgreSQL restarted");
            }
        }
        faults_done.fetch_add(1, Ordering::SeqCst);
    }
    let slapd = bounce.await.unwrap();
    if !after_runs.is_empty() {
        eprintln!(
            "chaos: the runs ended before {after_runs:?}: raise IDSYNC_CHAOS_ROW_MS or the sizes"
        );
    }

    // Both runs end, SUCCESS, with counts that are the objects.
    let mut summaries = Vec::new();
    for (id, expected) in run_ids.iter().zip([rows, ldap_rows]) {
        let deadline = Instant::now() + LIMIT;
        let summary = loop {
            let s = get(&http, &bases, &format!("recon/{id}")).await;
            if s["state"] != "ACTIVE" {
                break s;
            }
            assert!(Instant::now() < deadline, "run {id} still ACTIVE: {s:#}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(summary["state"], "SUCCESS", "{summary:#}");
        let by_node = summary["sourceProcessedByNode"].as_object().unwrap();
        let sum: u64 = by_node.values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(sum, expected, "every source counted once: {summary:#}");
        assert_eq!(processed(&summary), expected, "{summary:#}");
        assert_eq!(
            summary["progress"]["source"]["existing"]["total"],
            expected.to_string(),
            "{summary:#}"
        );
        assert_eq!(summary["statusSummary"]["FAILURE"], 0, "{summary:#}");
        summaries.push(summary);
    }
    eprintln!(
        "chaos: runs ended after {:?} ({} and {})",
        started.elapsed(),
        summaries[0]["duration"],
        summaries[1]["duration"]
    );

    // Recon 1: every HR row is one managed user, and the links are exactly those pairs.
    let hr_ids: BTreeSet<String> = csv_rows(&p.read("data/hr.csv"))
        .into_iter()
        .map(|r| r["uid"].to_lowercase())
        .collect();
    assert_eq!(hr_ids.len() as u64, rows);
    assert_eq!(
        psql_query(
            &pg.url,
            "SELECT count(*) FROM objects WHERE object_type = 'user'"
        ),
        rows.to_string(),
        "one managed user per row"
    );
    let users = set_of(psql_query(
        &pg.url,
        "SELECT id FROM objects WHERE object_type = 'user'",
    ));
    assert!(users == hr_ids, "the managed users are the HR rows");
    assert_eq!(
        psql_query(
            &pg.url,
            "SELECT count(*) - count(DISTINCT obj->>'userName') FROM objects WHERE object_type = 'user'"
        ),
        "0",
        "no duplicate userName"
    );
    let link_pairs = |mapping: &str| -> Vec<(String, String)> {
        psql_query(
            &pg.url,
            &format!("SELECT first_id, second_id FROM links WHERE link_type = '{mapping}'"),
        )
        .lines()
        .map(|l| {
            let (a, b) = l.split_once('|').unwrap();
            (a.to_lowercase(), b.to_lowercase())
        })
        .collect()
    };
    let hr_links = link_pairs(HR_MAPPING);
    assert_eq!(hr_links.len() as u64, rows, "one link per row");
    assert!(
        hr_links.iter().all(|(s, t)| s == t && users.contains(t)),
        "each link joins a row to its user"
    );

    // Recon 2: every people row is one LDAP entry, linked to it.
    let people: BTreeMap<String, String> = csv_rows(&p.read("data/people.csv"))
        .into_iter()
        .map(|r| (r["userName"].to_lowercase(), r["uid"].to_lowercase()))
        .collect();
    let entries = ldap_people(&slapd);
    assert_eq!(entries.len() as u64, ldap_rows, "one entry per row");
    let entry_uids: BTreeSet<&String> = entries.iter().map(|(u, _)| u).collect();
    assert_eq!(entry_uids.len(), entries.len(), "no duplicate uid");
    assert!(
        entry_uids.iter().all(|u| people.contains_key(*u)),
        "every entry is a row"
    );
    let uuid_of: BTreeMap<&String, &String> = entries.iter().map(|(u, e)| (u, e)).collect();
    let ldap_links: BTreeSet<(String, String)> = link_pairs(LDAP_MAPPING).into_iter().collect();
    let expected_links: BTreeSet<(String, String)> = people
        .iter()
        .map(|(user, row)| (row.clone(), uuid_of[user].clone()))
        .collect();
    assert_eq!(ldap_links.len() as u64, ldap_rows, "one link per row");
    assert!(
        ldap_links == expected_links,
        "each link joins a row to its entry"
    );

    // The queue: every change applied once, in order, and the last value in the table.
    stream.await.unwrap();
    eprintln!(
        "chaos: the change stream retried {} requests that failed during the faults",
        retried.load(Ordering::SeqCst)
    );
    let deadline = Instant::now() + LIMIT;
    loop {
        let q = get(
            &http,
            &bases,
            "sync/queue?_queryFilter=true&_pageSize=1&_totalPagedResultsPolicy=EXACT",
        )
        .await;
        if q["totalPagedResults"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the queue did not drain: {q:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dead = get(
        &http,
        &bases,
        "sync/deadletter?_queryFilter=true&_pageSize=1&_totalPagedResultsPolicy=EXACT",
    )
    .await;
    assert_eq!(dead["totalPagedResults"], 0, "no dead letter: {dead:#}");
    let expected: String = (0..rounds)
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(",");
    for d in &devices {
        let history = psql_query(
            &pg.url,
            &format!("SELECT string_agg(seq, ',' ORDER BY n) FROM device_history WHERE id = '{d}'"),
        );
        assert_eq!(history, expected, "device {d}: each change once, in order");
        assert_eq!(
            psql_query(
                &pg.url,
                &format!("SELECT seq FROM devices WHERE id = '{d}'")
            ),
            (rounds - 1).to_string()
        );
    }
    assert_eq!(
        psql_query(&pg.url, "SELECT count(*) FROM devices"),
        DEVICES.to_string()
    );
    // One committed decision per change: an event's audit entry and its deletion are one commit.
    let audit = get(
        &http,
        &bases,
        &format!(
            "audit/sync?_queryFilter={}&_pageSize=1&_totalPagedResultsPolicy=EXACT",
            crate::support::urlencode(&format!(
                "mapping eq \"{QUEUED_MAPPING}\" and status eq \"SUCCESS\""
            ))
        ),
    )
    .await;
    assert_eq!(
        audit["totalPagedResults"],
        json!(rounds * DEVICES as u64),
        "one successful sync per change: {audit:#}"
    );
    eprintln!("chaos: all checks passed after {:?}", started.elapsed());
    drop(nodes);
}
