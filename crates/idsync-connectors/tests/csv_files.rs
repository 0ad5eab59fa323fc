//! CSV file behaviour a user can see in the file: bad rows with line numbers, RFC 4180 quoting,
//! empty fields, multi-valued columns, header and unmapped columns kept, concurrent writers.

#![allow(clippy::unwrap_used)] // Tests may unwrap.

use idsync_connectors::csv::CsvConnector;
use idsync_connectors::{Connector, ConnectorError, ObjectSet};
use idsync_core::{Filter, QueryRequest};
use serde_json::{Map, Value, json};
use std::path::Path;
use std::sync::Arc;

fn set_for(dir: &Path, props: Value, types: Value) -> Arc<dyn ObjectSet> {
    let props: Map<String, Value> = serde_json::from_value(props).unwrap();
    CsvConnector::new("hr", &props, Some(&types), dir)
        .unwrap()
        .object_set("account")
        .unwrap()
}

fn simple_types() -> Value {
    json!({"account": {"properties": {
        "name": {"type": "string"},
        "email": {"type": "string", "nativeName": "mail"},
        "roles": {"type": "array"},
        "age": {"type": "integer"}
    }}})
}

#[tokio::test]
async fn a_bad_row_reports_its_line_number_and_blocks_writes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hr.csv");
    let original = "uid,name,mail,roles,age\n1,a,a@x,,3\n2,b,b@x\n3,c,c@x,,4\n";
    std::fs::write(&file, original).unwrap();
    let set = set_for(dir.path(), json!({"csvFile": "hr.csv"}), simple_types());
    let err = set.query(&QueryRequest::all()).await.unwrap_err();
    match err {
        ConnectorError::InvalidData(m) => assert!(m.contains("line 3"), "{m}"),
        other => panic!("expected InvalidData, got {other:?}"),
    }
    let err = set
        .create(Some("9"), json!({"name": "z"}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectorError::InvalidData(ref m) if m.contains("line 3")),
        "{err:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        original,
        "a failed write changes nothing"
    );

    // A value that does not fit its declared type is reported with its line too.
    std::fs::write(&file, "uid,name,mail,roles,age\n1,a,a@x,,3\n2,b,b@x,,old\n").unwrap();
    let err = set.query(&QueryRequest::all()).await.unwrap_err();
    assert!(
        matches!(err, ConnectorError::InvalidData(ref m) if m.contains("line 3")),
        "{err:?}"
    );
}

#[tokio::test]
async fn quoting_empty_fields_and_multi_values_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hr.csv");
    std::fs::write(&file, "uid,name,mail,roles,age\n").unwrap();
    let set = set_for(
        dir.path(),
        json!({"csvFile": "hr.csv", "multivalueDelimiter": ";"}),
        simple_types(),
    );
    let tricky = "Smith, \"Jr\"\nsecond line";
    let created = set
        .create(
            Some("1"),
            json!({"name": tricky, "email": null, "roles": ["a", "b"], "age": 42}),
        )
        .await
        .unwrap();
    assert_eq!(
        created,
        json!({"_id": "1", "name": tricky, "roles": ["a", "b"], "age": 42})
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "uid,name,mail,roles,age\n1,\"Smith, \"\"Jr\"\"\nsecond line\",,a;b,42\n",
        "RFC 4180 quoting, null written as an empty field"
    );
    assert_eq!(set.get("1").await.unwrap().unwrap(), created);
    let f: Filter = r#"roles eq "b""#.parse().unwrap();
    assert_eq!(
        set.query(&QueryRequest::with_filter(f))
            .await
            .unwrap()
            .results
            .len(),
        1
    );
    let r = set
        .create(Some("2"), json!({"name": "x", "roles": ["a;b", "c"]}))
        .await;
    assert!(
        matches!(r, Err(ConnectorError::InvalidData(_))),
        "delimiter inside a value: {r:?}"
    );
}

#[tokio::test]
async fn header_order_and_unmapped_columns_survive_writes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hr.csv");
    std::fs::write(
        &file,
        "age,uid,extra,name,mail,roles\n30,1,keep me,a,a@x,\n",
    )
    .unwrap();
    let set = set_for(dir.path(), json!({"csvFile": "hr.csv"}), simple_types());
    set.update("1", None, json!({"name": "A", "age": 31}))
        .await
        .unwrap();
    set.create(Some("2"), json!({"name": "b"})).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "age,uid,extra,name,mail,roles\n31,1,keep me,A,,\n,2,,b,,\n"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut leftovers = leftovers;
    leftovers.sort();
    // The lock file stays (removing it would race with another process taking it).
    assert_eq!(
        leftovers,
        ["hr.csv", "hr.csv.lock"],
        "no temporary files left behind"
    );
}

#[tokio::test]
async fn concurrent_writers_lose_no_rows() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hr.csv"), "uid,name,mail,roles,age\n").unwrap();
    // Two connector instances on the same file share one writer lock.
    let a = set_for(dir.path(), json!({"csvFile": "hr.csv"}), simple_types());
    let b = set_for(
        dir.path(),
        json!({"csvFile": dir.path().join("hr.csv")}),
        simple_types(),
    );
    let mut tasks = Vec::new();
    for i in 0..300 {
        let set = if i % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        tasks.push(tokio::spawn(async move {
            set.create(Some(&format!("{i:04}")), json!({"name": format!("n{i}")}))
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(a.count().await.unwrap(), Some(300));
    let mut deletes = Vec::new();
    for i in (0..300).step_by(3) {
        let set = Arc::clone(&b);
        deletes.push(tokio::spawn(async move {
            set.delete(&format!("{i:04}"), None).await
        }));
    }
    for t in deletes {
        t.await.unwrap().unwrap();
    }
    assert_eq!(a.count().await.unwrap(), Some(200));
    let all = a.query(&QueryRequest::all()).await.unwrap().results;
    assert_eq!(all.len(), 200);
    assert!(
        all.iter()
            .all(|o| o["_id"].as_str().unwrap().parse::<u32>().unwrap() % 3 != 0)
    );
}

#[tokio::test]
async fn name_column_and_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("u.csv"), "id;login;mail\n7;jdoe;j@x\n").unwrap();
    let set = set_for(
        dir.path(),
        json!({"csvFile": "u.csv", "headerUid": "id", "headerName": "login", "fieldDelimiter": ";"}),
        json!({"account": {"properties": {
            "userName": {"type": "string", "nativeName": "__NAME__"},
            "mail": {"type": "string"}
        }}}),
    );
    assert_eq!(
        set.get("7").await.unwrap().unwrap(),
        json!({"_id": "7", "userName": "jdoe", "mail": "j@x"})
    );
    let props: Map<String, Value> = serde_json::from_value(json!({"headerUid": "id"})).unwrap();
    let r = CsvConnector::new("x", &props, None, dir.path());
    assert!(
        matches!(r, Err(ConnectorError::Config(_))),
        "csvFile is required"
    );
    let props: Map<String, Value> =
        serde_json::from_value(json!({"csvFile": "u.csv", "headerUid": "nope"})).unwrap();
    let c = CsvConnector::new("x", &props, None, dir.path()).unwrap();
    assert!(
        matches!(c.test().await, Err(ConnectorError::Config(_))),
        "missing uid column"
    );
}

async fn page_ids(set: &Arc<dyn ObjectSet>, request: &mut QueryRequest) -> (Vec<String>, bool) {
    let page = set.query(request).await.unwrap();
    let ids = page
        .results
        .iter()
        .map(|o| o["_id"].as_str().unwrap().to_owned())
        .collect();
    let more = page.cookie.is_some();
    request.cookie = page.cookie;
    (ids, more)
}

#[tokio::test]
async fn paging_a_sorted_file_survives_changes_between_pages() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hr.csv");
    let mut text = String::from("uid,name,mail,roles,age\n");
    for i in 0..40 {
        text.push_str(&format!("{:03},n{i},,,{i}\n", i * 2));
    }
    std::fs::write(&file, text).unwrap();
    let set = set_for(dir.path(), json!({"csvFile": "hr.csv"}), simple_types());
    let mut request = QueryRequest {
        page_size: Some(7),
        ..QueryRequest::default()
    };
    let (mut seen, _) = page_ids(&set, &mut request).await;
    let (ids, _) = page_ids(&set, &mut request).await;
    seen.extend(ids);
    assert_eq!(seen.len(), 14);
    // Between pages: delete a row not yet read, add rows before and after the cookie, out of
    // order, so the file is no longer sorted.
    set.delete("040", None).await.unwrap();
    set.create(Some("001"), json!({"name": "early"}))
        .await
        .unwrap();
    set.create(Some("051"), json!({"name": "late"}))
        .await
        .unwrap();
    loop {
        let (ids, more) = page_ids(&set, &mut request).await;
        seen.extend(ids);
        if !more {
            break;
        }
    }
    let mut expected: Vec<String> = (0..40).map(|i| format!("{:03}", i * 2)).collect();
    expected.retain(|id| id != "040");
    expected.push("051".into());
    expected.sort();
    assert_eq!(
        seen, expected,
        "each row once, in id order; later inserts after the cookie appear"
    );

    // With a filter, on the sorted file as written by the connector's own rewrite.
    std::fs::write(&file, "uid,name,mail,roles,age\n").unwrap();
    for i in 0..30 {
        set.create(
            Some(&format!("{i:03}")),
            json!({"name": format!("n{}", i % 3)}),
        )
        .await
        .unwrap();
    }
    let mut request = QueryRequest {
        page_size: Some(4),
        filter: Some(r#"name eq "n1""#.parse().unwrap()),
        ..QueryRequest::default()
    };
    let mut seen = Vec::new();
    loop {
        let (ids, more) = page_ids(&set, &mut request).await;
        seen.extend(ids);
        if !more {
            break;
        }
    }
    let expected: Vec<String> = (0..30)
        .filter(|i| i % 3 == 1)
        .map(|i| format!("{i:03}"))
        .collect();
    assert_eq!(seen, expected);
}

/// Cluster nodes on one host write the same file from several processes: a write waits for the
/// advisory lock on `<file>.lock` (held here as another process would), then reads the file as
/// that process left it, so its row is kept.
#[tokio::test]
async fn writes_wait_for_another_process_holding_the_file_lock() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hr.csv");
    std::fs::write(&file, "uid,name,mail,roles,age\n1,a,a@x,,3\n").unwrap();
    let set = set_for(dir.path(), json!({"csvFile": "hr.csv"}), simple_types());
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.path().join("hr.csv.lock"))
        .unwrap();
    lock.lock().unwrap();
    let writer = {
        let set = set.clone();
        tokio::spawn(async move { set.create(Some("2"), json!({"name": "b"})).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!writer.is_finished(), "the write waits for the lock");
    // "The other process" rewrites the file while it holds the lock.
    std::fs::write(&file, "uid,name,mail,roles,age\n1,a,a@x,,3\n7,other,,,\n").unwrap();
    lock.unlock().unwrap();
    writer.await.unwrap().unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("7,other"),
        "the other process's row is kept: {text}"
    );
    assert!(text.contains("2,b"), "{text}");
}

/// IDM's sample files put a space after each comma, before the quote (`"a", "b"`), and IDM's
/// CSV connector reads them: so does idsync, in every read (get, query, paging, count) and
/// through a write that rewrites the file.
#[tokio::test]
async fn spaces_around_quoted_fields_are_read_as_idm_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hr.csv");
    std::fs::write(
        &file,
        "\"firstName\", \"uid\", \"lastName\", \"email\"\n\
         \"Barbara\", \"BJENSEN\", \"Jensen\", \"bjensen@example.com\"\n\
         \"Jane\", \"JSANCHEZ\" , \" Sanchez, Jr \", jsanchez@example.com \n\
         \"Steven\",\t\"SCARTER\", Carter Smith, \"scarter@example.com\"\n",
    )
    .unwrap();
    let types = json!({"account": {"properties": {
        "firstName": {"type": "string"},
        "lastName": {"type": "string"},
        "email": {"type": "string"}
    }}});
    let set = set_for(dir.path(), json!({"csvFile": "hr.csv"}), types);
    assert_eq!(
        set.get("JSANCHEZ").await.unwrap(),
        Some(json!({"_id": "JSANCHEZ", "firstName": "Jane",
            "lastName": " Sanchez, Jr ", "email": "jsanchez@example.com"})),
        "spaces outside quotes are dropped, spaces and commas inside kept"
    );
    assert_eq!(
        set.get("SCARTER").await.unwrap().unwrap()["lastName"],
        json!("Carter Smith"),
        "spaces between the words of an unquoted value are kept"
    );
    let mut request = QueryRequest::all();
    request.page_size = Some(1);
    let mut ids = Vec::new();
    loop {
        let page = set.query(&request).await.unwrap();
        ids.extend(
            page.results
                .iter()
                .map(|o| o["_id"].as_str().unwrap().to_owned()),
        );
        match page.cookie {
            Some(c) => request.cookie = Some(c),
            None => break,
        }
    }
    assert_eq!(ids, ["BJENSEN", "JSANCHEZ", "SCARTER"], "paged one by one");
    assert_eq!(set.count().await.unwrap(), Some(3));

    // A write keeps every row readable, the old ones and the new one.
    set.create(
        Some("TMORRIS"),
        json!({"firstName": "Tom", "lastName": "Morris"}),
    )
    .await
    .unwrap();
    set.update(
        "BJENSEN",
        None,
        json!({"firstName": "Babs", "lastName": "Jensen"}),
    )
    .await
    .unwrap();
    let all = set.query(&QueryRequest::all()).await.unwrap().results;
    let names: Vec<(&str, &str)> = all
        .iter()
        .map(|o| (o["_id"].as_str().unwrap(), o["firstName"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("BJENSEN", "Babs"),
            ("JSANCHEZ", "Jane"),
            ("SCARTER", "Steven"),
            ("TMORRIS", "Tom")
        ]
    );
    assert_eq!(
        set.get("JSANCHEZ").await.unwrap().unwrap()["lastName"],
        json!(" Sanchez, Jr ")
    );
}

/// A file whose header has no spaces around its fields is read byte for byte: a value's own
/// leading space stays (only IDM-style files drop them).
#[tokio::test]
async fn a_plain_header_keeps_spaces_in_values() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hr.csv"), "uid,name\n1, padded \n").unwrap();
    let types = json!({"account": {"properties": {"name": {"type": "string"}}}});
    let set = set_for(dir.path(), json!({"csvFile": "hr.csv"}), types);
    assert_eq!(
        set.get("1").await.unwrap().unwrap()["name"],
        json!(" padded ")
    );
}
