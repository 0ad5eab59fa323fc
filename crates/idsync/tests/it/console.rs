//! The admin console in a real headless Chromium against a real `idsync serve`
//! (docs/console.md): sign in, start a reconciliation from the Mappings page and watch it end
//! SUCCESS with the right counts, page through a dry run's plan, cancel a running run, replay
//! dead letters until the queue drains, a reader who cannot start anything, a wrong token
//! refused, and no JavaScript error in the browser's log.
//!
//! Each test also saves screenshots of the pages it shows (to a temp folder, or to
//! `$IDSYNC_CONSOLE_SCREENSHOTS`: scripts/console-screenshots refreshes docs/console/).

use crate::browser::Browser;
use crate::server::{ADMIN_TOKEN, Server, send};
use crate::slapd::{PEOPLE, Slapd};
use crate::support::{Project, idsync};
use reqwest::Method;
use serde_json::{Value, json};

const MAPPING: &str = "systemHrAccounts_managedUser";
const USER: &str = "console-admin";
const PASSWORD: &str = "a long console password";
const READER_TOKEN: &str = "console-reader-token-0123456789";

/// samples/hr-to-managed with `rows` generated people, pages of 1,000 (the progress bar moves
/// at every page), an admin user with a password and a reader token.
fn hr_project(rows: u64) -> Project {
    let p = Project::copy_of("samples/hr-to-managed");
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
    let sync = p.read("conf/sync.json").replace(
        "\"reconSourceQueryPageSize\": 10000",
        "\"reconSourceQueryPageSize\": 1000",
    );
    assert!(sync.contains("\"reconSourceQueryPageSize\": 1000"));
    p.write("conf/sync.json", &sync);
    p.write(
        "conf/schedule-nightly.json",
        &json!({"enabled": true, "type": "cron", "schedule": "0 0 2 1 1 ?",
                "invokeService": "sync",
                "invokeContext": {"action": "reconcile", "mapping": MAPPING}})
        .to_string(),
    );
    p.write(
        "conf/authentication.json",
        &json!({
            "users": [{"username": USER, "roles": ["admin"],
                       "password": idsync_api::hash_password(PASSWORD).unwrap()}],
            "tokens": [{"name": "viewer", "roles": ["reader"],
                        "sha256": idsync_api::sha256_hex(READER_TOKEN)}],
        })
        .to_string(),
    );
    p
}

async fn sign_in_with_password(b: &Browser, s: &Server) {
    b.goto(&format!("{}/admin/", s.base())).await;
    b.type_into("#signin-username", USER).await;
    b.type_into("#signin-password", PASSWORD).await;
    b.click("#signin-submit").await;
    b.find("#nodes").await;
}

async fn sign_in_with_token(b: &Browser, s: &Server, token: &str) {
    b.goto(&format!("{}/admin/", s.base())).await;
    b.click("#tab-token").await;
    b.type_into("#signin-token", token).await;
    b.click("#signin-submit").await;
}

/// The run page's `#run-state` text once the run has ended.
async fn wait_ended(b: &Browser) -> String {
    b.wait_text("#run-state", "ended", |t| !t.is_empty() && t != "ACTIVE")
        .await
}

fn run_id_of(hash: &Value) -> String {
    hash.as_str()
        .and_then(|h| h.strip_prefix("#/runs/"))
        .unwrap_or_else(|| panic!("not on a run page: {hash}"))
        .to_string()
}

async fn current_run(b: &Browser) -> String {
    b.find("#run-state").await;
    run_id_of(&b.eval("return location.hash;").await)
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_dry_run_plan_then_reconcile_and_watch_it_succeed() {
    const ROWS: u64 = 20_000;
    let p = hr_project(ROWS);
    let s = Server::start(p.path());
    let b = Browser::start().await;

    // The sign-in page needs no credentials; a password is exchanged once for a session token
    // kept in this tab's sessionStorage, never in the URL.
    b.goto(&format!("{}/admin/", s.base())).await;
    b.find("#signin-username").await;
    b.screenshot("sign-in").await;
    sign_in_with_password(&b, &s).await;
    b.wait_text("#nodes", "lists this node", |t| t.contains("e2e-node"))
        .await;
    let stored = b
        .eval("return JSON.parse(sessionStorage.getItem('idsync.console.session'));")
        .await;
    let token = stored["token"].as_str().unwrap().to_string();
    assert_eq!(stored["roles"], json!(["admin"]));
    assert!(!token.is_empty() && !token.contains(PASSWORD));
    let href = b.eval("return location.href;").await;
    assert!(!href.as_str().unwrap().contains(&token), "{href}");
    assert_eq!(
        b.eval("return localStorage.length;").await,
        json!(0),
        "nothing kept beyond the tab"
    );

    // A dry run from the Mappings page: its plan pages through every source object.
    b.click("nav a[data-page=mappings]").await;
    b.wait_text(".mapping", "shows the safety limits", |t| {
        t.contains("maxDeletes") && t.contains("system/hr/account")
    })
    .await;
    b.screenshot("mappings").await;
    b.click(&format!("#m-{MAPPING}-dryrun")).await;
    let dry = current_run(&b).await;
    assert_eq!(wait_ended(&b).await, "SUCCESS");
    b.wait_text("#plan-pager-status", "counts the plan", |t| {
        t == "Page 1 of 800 · 20,000 entries"
    })
    .await;
    let first_page = b.text("#plan-table").await;
    assert!(
        first_page.contains("ABSENT") && first_page.contains("CREATE"),
        "{first_page}"
    );
    assert!(
        first_page.contains("/userName"),
        "diffs are shown: {first_page}"
    );
    b.eval("document.getElementById('plan-situation').closest('section').scrollIntoView();")
        .await;
    b.screenshot("dry-run").await;
    b.click("#plan-pager-next").await;
    b.wait_text("#plan-pager-status", "shows page 2", |t| {
        t.starts_with("Page 2 of 800")
    })
    .await;
    assert_ne!(
        b.text("#plan-table").await,
        first_page,
        "page 2 shows other objects"
    );
    // Filters: no object would be deleted; one id is found by its text.
    b.find("#plan-action")
        .await
        .select_by_value("DELETE")
        .await
        .unwrap();
    b.wait_text("#plan", "is empty for DELETE", |t| {
        t.contains("No entry matches.")
    })
    .await;
    b.find("#plan-action")
        .await
        .select_by_value("CREATE")
        .await
        .unwrap();
    b.wait_text("#plan-pager-status", "counts the CREATEs", |t| {
        t.ends_with("20,000 entries")
    })
    .await;
    let (_, plan) = s
        .get(&format!("recon/{dry}/plan?_queryFilter=true&_pageSize=1"))
        .await;
    let some_id = plan["result"][0]["sourceId"].as_str().unwrap().to_string();
    b.type_into("#plan-id", &some_id).await;
    b.eval("document.getElementById('plan-id').dispatchEvent(new Event('change'));")
        .await;
    b.wait_text("#plan-pager-status", "finds the id", |t| {
        t.starts_with("Page 1 of 1 ·")
    })
    .await;
    assert!(b.text("#plan-table").await.contains(&some_id));
    let (_, users) = s
        .get("managed/user?_queryFilter=true&_pageSize=1&_totalPagedResultsPolicy=EXACT")
        .await;
    assert_eq!(users["totalPagedResults"], 0, "a dry run changes nothing");

    // The real run: the progress bar moves page by page and the run ends SUCCESS.
    b.click("nav a[data-page=mappings]").await;
    b.click(&format!("#m-{MAPPING}-recon")).await;
    let run = current_run(&b).await;
    assert_ne!(run, dry);
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        let state = b.text("#run-state").await;
        let now = b
            .eval("const e = document.getElementById('run-progress'); return e ? e.getAttribute('aria-valuenow') : null;")
            .await;
        if let Some(v) = now.as_str().and_then(|v| v.parse::<f64>().ok())
            && seen.last() != Some(&v)
        {
            seen.push(v);
        }
        if seen.len() == 2 {
            b.screenshot("run-active").await;
        }
        if !state.is_empty() && state != "ACTIVE" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run {run} never ended"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(wait_ended(&b).await, "SUCCESS");
    assert!(
        seen.iter().any(|v| *v > 0.0 && *v < 100.0),
        "the progress bar showed the run part-way: {seen:?}"
    );
    b.wait_text("#run-progress", "shows every object", |t| {
        t == "20,000 / 20,000"
    })
    .await;
    b.wait_text("#run-status", "counts every success", |t| {
        t == "20,000 succeeded · 0 failed"
    })
    .await;
    let situations = b.text("#situations").await;
    assert!(situations.contains("ABSENT 20,000"), "{situations}");
    let actions = b.text("#actions").await;
    assert!(actions.contains("created 20,000"), "{actions}");
    assert!(b.text("#per-node").await.contains("e2e-node 20,000"));
    b.screenshot("run").await;
    let summary = s.wait_run(&run).await;
    assert_eq!(summary["progress"]["target"]["created"], ROWS, "{summary}");

    b.route("#/mappings").await;
    b.wait_text(".mapping", "shows the last run", |t| {
        t.contains("ABSENT 20,000")
    })
    .await;
    b.screenshot("mappings").await;

    // Objects: one user with its link and the audit entry that created it.
    b.route("#/objects?path=managed%2Fuser").await;
    b.wait_text("#objects-pager-status", "counts the users", |t| {
        t.ends_with("20,000 entries")
    })
    .await;
    b.screenshot("objects").await;
    b.click("#objects tbody tr:first-child a").await;
    b.wait_text("#object-links", "shows the link", |t| {
        t.contains("system/hr/account/")
    })
    .await;
    b.wait_text("#object-audit", "shows why the user is here", |t| {
        t.contains("ABSENT") && t.contains("CREATE")
    })
    .await;
    b.screenshot("object").await;

    // Schedules: a schedule stored over REST is paused from the page; the conf/ one cannot be.
    let (status, job) = send(
        s.admin(Method::PUT, "scheduler/job/weekly-recon")
            .json(&json!({
                "enabled": true, "type": "cron", "schedule": "0 0 3 ? * SUN",
                "invokeService": "sync",
                "invokeContext": {"action": "reconcile", "mapping": MAPPING}
            })),
    )
    .await;
    assert_eq!(status, 201, "{job}");
    b.route("#/schedules").await;
    b.wait_text("#schedules", "lists both schedules", |t| {
        t.contains("nightly") && t.contains("weekly-recon")
    })
    .await;
    b.find("#pause-nightly").await;
    // Read in one step: the table re-renders while the page polls.
    assert_eq!(
        b.eval("return document.getElementById('pause-nightly').disabled;")
            .await,
        json!(true),
        "a conf/ schedule is paused in its file"
    );
    b.click("#pause-weekly-recon").await;
    b.wait_text("#schedules", "shows it paused", |t| t.contains("paused"))
        .await;
    let (_, job) = s.get("scheduler/job/weekly-recon").await;
    assert_eq!(job["enabled"], false, "{job}");
    b.click("#schedules tbody tr:first-child a").await;
    b.find("#firings table, #firings .empty").await;

    // The other pages show without errors.
    for (page, css, shot) in [
        ("#/runs", "#runs", "runs"),
        ("#/queue", "#queue-counts", "queue"),
        ("#/schedules", "#schedules", "schedules"),
    ] {
        b.route(page).await;
        b.find(css).await;
        b.screenshot(shot).await;
    }
    b.route("#/config").await;
    b.click("#config-connectors button").await;
    b.wait_text("#test-hr", "tests the connector", |t| t.contains("ok"))
        .await;
    b.screenshot("config").await;
    let config = b.text("#config-view").await;
    assert!(config.contains("systemHrAccounts_managedUser"), "{config}");
    b.assert_no_errors(|_| false).await;

    // Signing out forgets the session on the server too.
    b.click("#signout").await;
    b.find("#signin-username").await;
    let (status, _) = send(s.http().get(s.url("info/login")).bearer_auth(&token)).await;
    assert_eq!(status, 401, "the session token is revoked");
    b.assert_no_errors(|_| false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_a_running_reconciliation_from_its_page() {
    // Big enough that no run ends before the click lands (the test accepts only CANCELED).
    const ROWS: u64 = 300_000;
    let p = hr_project(ROWS);
    let s = Server::start(p.path());
    let b = Browser::start().await;
    sign_in_with_token(&b, &s, ADMIN_TOKEN).await;
    b.find("#nodes").await;
    b.route("#/mappings").await;
    b.click(&format!("#m-{MAPPING}-recon")).await;
    let run = current_run(&b).await;
    // While it runs, the dashboard shows it with its progress, rate and ETA.
    b.wait_text("#run-progress", "moves", |t| !t.starts_with("0 /"))
        .await;
    b.click("nav a[data-page=dashboard]").await;
    b.wait_text("#active-runs", "shows the rate", |t| {
        t.contains("objects/s")
    })
    .await;
    // The cluster view shows the run's jobs the node holds, linked to the run.
    b.wait_text("#nodes", "shows the jobs the node holds", |t| {
        t.contains("recon.")
    })
    .await;
    let held = b
        .eval("return [...document.querySelectorAll('#nodes .held-job a')].map(a => a.getAttribute('href'));")
        .await;
    assert!(
        held.as_array()
            .unwrap()
            .iter()
            .all(|href| href == &json!(format!("#/runs/{run}"))),
        "{held}"
    );
    b.screenshot("dashboard").await;
    b.route(&format!("#/runs/{run}")).await;
    b.click("#cancel-run").await;
    b.confirm().await;
    assert_eq!(wait_ended(&b).await, "CANCELED");
    let summary = s.wait_run(&run).await;
    assert_eq!(summary["state"], "CANCELED", "{summary}");
    let processed = summary["progress"]["source"]["existing"]["processed"]
        .as_u64()
        .unwrap();
    assert!(processed < ROWS, "canceled part-way: {summary}");
    b.wait_text("#run-stage", "says it was canceled", |t| {
        t.contains("CANCELED")
    })
    .await;
    b.screenshot("run-canceled").await;
    b.assert_no_errors(|_| false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_is_refused_and_a_reader_cannot_start_anything() {
    let p = hr_project(50);
    let s = Server::start(p.path());
    let b = Browser::start().await;

    sign_in_with_token(&b, &s, "not-a-token").await;
    b.wait_text("#signin-error", "refuses the token", |t| {
        t.contains("Sign-in refused") && t.contains("invalid credentials")
    })
    .await;
    assert!(b.find("#signin-token").await.is_displayed().await.unwrap());
    assert_eq!(b.eval("return sessionStorage.length;").await, json!(0));

    sign_in_with_token(&b, &s, READER_TOKEN).await;
    b.find("#nodes").await;
    assert!(b.text("#who-role").await.contains("read-only"));
    b.route("#/mappings").await;
    for action in ["recon", "dryrun", "recon-by-id"] {
        let button = b.find(&format!("#m-{MAPPING}-{action}")).await;
        assert!(
            !button.is_enabled().await.unwrap(),
            "{action} is disabled for a reader"
        );
    }
    b.screenshot("reader-mappings").await;
    // And the API refuses the reader anyway, whatever the page shows.
    let status = b
        .client
        .execute_async(
            "const [token, mapping, done] = arguments;
             fetch('/openidm/recon?_action=recon&mapping=' + mapping,
                   {method: 'POST', headers: {Authorization: 'Bearer ' + token}})
               .then(r => done(r.status));",
            vec![json!(READER_TOKEN), json!(MAPPING)],
        )
        .await
        .unwrap();
    assert_eq!(status, json!(403));
    let (_, runs) = s.get("recon").await;
    assert_eq!(runs["reconciliations"], json!([]), "nothing was started");
    // The refusals above are the only errors the browser logged.
    b.assert_no_errors(|m| m.contains("status of 401") || m.contains("status of 403"))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replayed_dead_letters_drain_the_queue() {
    let mut slapd = Slapd::start();
    let p = queued_project(&slapd);
    let s = Server::start(p.path());
    slapd.stop();
    for i in 0..3 {
        let (status, body) = send(
            s.admin(Method::POST, "managed/user?_action=create")
                .json(&json!({"userName": format!("dead{i}"), "sn": "Queued"})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let b = Browser::start().await;
    sign_in_with_token(&b, &s, ADMIN_TOKEN).await;
    b.find("#queue-depth").await;
    // The cluster view shows the node consuming the mapping's queue.
    b.wait_text("#nodes", "shows the queue the node consumes", |t| {
        t.contains("queue managedUser_ldap")
    })
    .await;
    b.route("#/queue").await;
    b.wait_text("#count-dead", "shows 3 dead letters", |t| t == "3")
        .await;
    b.wait_text("#count-pending", "shows an empty queue", |t| t == "0")
        .await;
    b.screenshot("queue-dead-letters").await;
    slapd.restart();

    // One by one, then the rest by filter.
    b.click("#dead-letters tbody tr:first-child button.replay")
        .await;
    b.wait_text("#count-dead", "shows 2 dead letters", |t| t == "2")
        .await;
    b.type_into("#dead-cause", "unavailable").await;
    b.eval("document.getElementById('dead-cause').dispatchEvent(new Event('change'));")
        .await;
    b.click("#replay-all").await;
    b.wait_text("#confirm-text", "asks", |t| {
        t.contains("Replay 2 dead letter(s)")
    })
    .await;
    b.confirm().await;
    b.wait_text("#count-dead", "shows no dead letter", |t| t == "0")
        .await;
    b.wait_text("#count-pending", "drains", |t| t == "0").await;
    b.wait_text("#count-acquired", "drains", |t| t == "0").await;
    let (_, entries) = s
        .get("system/ldap/account?_queryFilter=sn+eq+%22Queued%22&_fields=_id")
        .await;
    assert_eq!(entries["result"].as_array().unwrap().len(), 3, "{entries}");
    b.assert_no_errors(|_| false).await;
}

/// managed/user → LDAP with queued sync that gives up after two retries.
fn queued_project(s: &Slapd) -> Project {
    let props: Value = serde_json::from_str(&s.configuration_properties()).unwrap();
    let p = Project {
        dir: tempfile::tempdir().unwrap(),
    };
    p.write(
        "conf/provisioner.openicf-ldap.json",
        &json!({
            "name": "ldap",
            "connectorRef": {"connectorName": "org.identityconnectors.ldap.LdapConnector"},
            "configurationProperties": props,
            "objectTypes": {"account": {"nativeType": "__ACCOUNT__", "properties": {
                "dn": {"type": "string", "nativeName": "__NAME__"},
                "uid": {"type": "string", "nativeName": "uid"},
                "cn": {"type": "string", "nativeName": "cn"},
                "sn": {"type": "string", "nativeName": "sn"}
            }}}
        })
        .to_string(),
    );
    p.write(
        "conf/managed.json",
        r#"{"objects":[{"name":"user","schema":{}}]}"#,
    );
    p.write(
        "conf/sync.json",
        &json!({"mappings": [{
            "name": "managedUser_ldap",
            "source": "managed/user",
            "target": "system/ldap/account",
            "queuedSync": {"enabled": true, "pollingInterval": 50, "retryDelay": 50,
                           "maxRetries": 2, "postRetryAction": "dead-letter-queue"},
            "properties": [
                {"source": "userName", "target": "dn", "transform": {"type": "text/javascript",
                    "source": format!("'uid=' + source + ',{PEOPLE}'")}},
                {"source": "userName", "target": "uid"},
                {"source": "userName", "target": "cn"},
                {"source": "sn", "target": "sn"}
            ],
            "policies": [
                {"situation": "ABSENT", "action": "CREATE"},
                {"situation": "CONFIRMED", "action": "UPDATE"},
                {"situation": "SOURCE_MISSING", "action": "DELETE"}
            ]
        }]})
        .to_string(),
    );
    p
}
