//! Creates of new ids are appended to the CSV file (no rewrite), and stay safe: duplicates are
//! still refused, a torn end left by a crash is never read and is removed by the next write, a
//! hand-written file without a final line break keeps its last row.

#![allow(clippy::unwrap_used)] // Tests may unwrap.

use futures::future::join_all;
use idsync_connectors::csv::CsvConnector;
use idsync_connectors::{Connector, ConnectorError, ObjectSet};
use idsync_core::QueryRequest;
use serde_json::{Map, Value, json};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

fn set_for(dir: &Path) -> Arc<dyn ObjectSet> {
    let props: Map<String, Value> = serde_json::from_value(json!({"csvFile": "hr.csv"})).unwrap();
    let types = json!({"account": {"properties": {
        "name": {"type": "string"},
        "mail": {"type": "string"}
    }}});
    CsvConnector::new("hr", &props, Some(&types), dir)
        .unwrap()
        .object_set("account")
        .unwrap()
}

fn inode(file: &Path) -> u64 {
    std::fs::metadata(file).unwrap().ino()
}

async fn ids(set: &Arc<dyn ObjectSet>) -> Vec<String> {
    let mut ids: Vec<String> = set
        .query(&QueryRequest::all())
        .await
        .unwrap()
        .results
        .iter()
        .map(|o| o["_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn creates_of_new_ids_are_appended_and_duplicates_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hr.csv");
    let original = "uid,name,mail\n1,Ann,ann@x\n";
    std::fs::write(&file, original).unwrap();
    let ino = inode(&file);
    let set = set_for(dir.path());

    let results = join_all((0..50).map(|i| {
        let set = Arc::clone(&set);
        async move {
            set.create(
                Some(&format!("n{i:02}")),
                json!({"name": format!("Name {i}"), "mail": format!("{i}@x")}),
            )
            .await
        }
    }))
    .await;
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(
            r.unwrap(),
            json!({"_id": format!("n{i:02}"), "name": format!("Name {i}"), "mail": format!("{i}@x")})
        );
    }
    assert_eq!(inode(&file), ino, "appended in place, not rewritten");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with(original), "existing bytes untouched");
    assert_eq!(text.lines().count(), 2 + 50);
    assert_eq!(set.count().await.unwrap(), Some(51));

    // Duplicates of a row already in the file, of an appended row, and of a row another
    // program appended meanwhile are refused, and change nothing.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(b"ext,Ext,ext@x\n")
        .unwrap();
    let before = std::fs::read_to_string(&file).unwrap();
    for id in ["1", "n07", "ext"] {
        let err = set
            .create(Some(id), json!({"name": "again"}))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ConnectorError::AlreadyExists(_)),
            "{id}: {err:?}"
        );
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    assert_eq!(
        set.get("ext").await.unwrap(),
        Some(json!({"_id": "ext", "name": "Ext", "mail": "ext@x"}))
    );

    // A batch with a create and an update of the new id in it still appends one row.
    let (a, b) = tokio::join!(
        set.create(Some("z1"), json!({"name": "Zed"})),
        set.update("z1", None, json!({"name": "Zed2"}))
    );
    assert_eq!(a.unwrap()["name"], "Zed");
    assert_eq!(b.unwrap()["name"], "Zed2");
    assert_eq!(set.get("z1").await.unwrap().unwrap()["name"], "Zed2");

    // An update of an existing row rewrites the file as before.
    set.update("1", None, json!({"name": "Ann B"}))
        .await
        .unwrap();
    assert_ne!(inode(&file), ino, "an update rewrites the file");
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(after.starts_with("uid,name,mail\n1,Ann B,\n"), "{after}");
    assert_eq!(ids(&set).await.len(), 53);
}

#[tokio::test]
async fn a_torn_append_is_never_read_and_the_next_write_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hr.csv");
    std::fs::write(&file, "uid,name,mail\n1,Ann,ann@x\n").unwrap();
    let set = set_for(dir.path());
    set.create(Some("2"), json!({"name": "Bob", "mail": "bob@x"}))
        .await
        .unwrap();
    // What a crash in the middle of the next append leaves: a row cut short, no line break.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(b"3,Carol,car")
        .unwrap();

    assert_eq!(
        set.get("3").await.unwrap(),
        None,
        "the torn row is not read"
    );
    assert_eq!(ids(&set).await, ["1", "2"]);
    assert_eq!(set.count().await.unwrap(), Some(2));
    // Another connector on the same file (another process) does not read it either.
    assert_eq!(set_for(dir.path()).get("3").await.unwrap(), None);

    set.create(Some("4"), json!({"name": "Dan"})).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "uid,name,mail\n1,Ann,ann@x\n2,Bob,bob@x\n4,Dan,\n",
        "the next write drops the torn row"
    );
    // The id of the torn row was never created.
    set.create(Some("3"), json!({"name": "Carol"}))
        .await
        .unwrap();
    assert_eq!(ids(&set).await, ["1", "2", "3", "4"]);
}

#[tokio::test]
async fn a_hand_written_last_line_without_line_break_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hr.csv");
    std::fs::write(&file, "uid,name,mail\n1,Ann,ann@x\n2,Bob,bob@x").unwrap();
    let set = set_for(dir.path());
    assert_eq!(ids(&set).await, ["1", "2"]);
    set.create(Some("3"), json!({"name": "Carol"}))
        .await
        .unwrap();
    set.create(Some("4"), json!({"name": "Dan"})).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "uid,name,mail\n1,Ann,ann@x\n2,Bob,bob@x\n3,Carol,\n4,Dan,\n"
    );
}

#[tokio::test]
async fn values_with_line_breaks_are_written_whole_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hr.csv");
    std::fs::write(&file, "uid,name,mail\n1,Ann,ann@x\n").unwrap();
    let set = set_for(dir.path());
    set.create(Some("2"), json!({"name": "two\nlines"}))
        .await
        .unwrap();
    set.create(Some("3"), json!({"name": "Carol"}))
        .await
        .unwrap();
    assert_eq!(
        set.get("2").await.unwrap(),
        Some(json!({"_id": "2", "name": "two\nlines"}))
    );
    assert_eq!(ids(&set).await, ["1", "2", "3"]);
}

#[tokio::test]
async fn the_first_create_makes_the_file_and_later_ones_append() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hr.csv");
    let set = set_for(dir.path());
    set.create(Some("a"), json!({"name": "A", "mail": "a@x"}))
        .await
        .unwrap();
    let ino = inode(&file);
    set.create(Some("b"), json!({"name": "B"})).await.unwrap();
    assert_eq!(inode(&file), ino);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "uid,name,mail\na,A,a@x\nb,B,\n"
    );
    set.delete("a", None).await.unwrap();
    set.create(Some("a"), json!({"name": "A2"})).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "uid,name,mail\nb,B,\na,A2,\n",
        "an id deleted by a rewrite can be created again"
    );
}
