//! `build_connector` from a provisioner config, with paths relative to the project folder.

#![allow(clippy::unwrap_used)] // Tests may unwrap.

use idsync_config::{ConnectorConfig, ConnectorKind};
use idsync_connectors::{ConnectorError, build_connector};
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn config(kind: ConnectorKind, raw: Value) -> ConnectorConfig {
    ConnectorConfig {
        name: "src".into(),
        kind,
        enabled: true,
        configuration_properties: raw["configurationProperties"].as_object().unwrap().clone(),
        object_types: BTreeMap::new(),
        sync_failure_handler: None,
        raw,
        file: "conf/provisioner.openicf-src.json".into(),
    }
}

#[tokio::test]
async fn builds_a_csv_connector_relative_to_the_project() {
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir(project.path().join("data")).unwrap();
    std::fs::write(project.path().join("data/hr.csv"), "uid,mail\n1,a@x\n").unwrap();
    let cfg = config(
        ConnectorKind::Csv,
        json!({
            "connectorRef": {"connectorName": "org.forgerock.openicf.csvfile.CSVFileConnector"},
            "configurationProperties": {"csvFile": "data/hr.csv"},
            "objectTypes": {"account": {"properties": {"email": {"type": "string", "nativeName": "mail"}}}}
        }),
    );
    let c = build_connector(&cfg, project.path()).unwrap();
    assert_eq!(c.name(), "src");
    c.test().await.unwrap();
    let set = c.object_set("account").unwrap();
    assert_eq!(
        set.get("1").await.unwrap(),
        Some(json!({"_id": "1", "email": "a@x"}))
    );
    assert!(matches!(
        c.object_set("group"),
        Err(ConnectorError::BadRequest(_))
    ));
    assert_eq!(
        c.schema()["account"]["properties"]["email"]["nativeName"],
        "mail"
    );
}

#[tokio::test]
async fn builds_a_database_table_connector_from_a_jdbc_url() {
    let project = tempfile::tempdir().unwrap();
    let db = project.path().join("hr.db");
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&db)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    sqlx::query("CREATE TABLE people (id TEXT PRIMARY KEY, email TEXT)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO people VALUES ('7', 'x@y')")
        .execute(&pool)
        .await
        .unwrap();
    let cfg = config(
        ConnectorKind::DatabaseTable,
        json!({
            "configurationProperties": {"jdbcDriver": "org.sqlite.JDBC", "database": "hr.db",
                "table": "people", "keyColumn": "id"},
            "objectTypes": {"account": {"properties": {"email": {"type": "string"}}}}
        }),
    );
    let c = build_connector(&cfg, project.path()).unwrap();
    c.test().await.unwrap();
    let set = c.object_set("account").unwrap();
    assert_eq!(
        set.get("7").await.unwrap(),
        Some(json!({"_id": "7", "email": "x@y"}))
    );
    assert_eq!(set.count().await.unwrap(), Some(1));

    let mut disabled = cfg.clone();
    disabled.enabled = false;
    assert!(matches!(
        build_connector(&disabled, project.path()),
        Err(ConnectorError::Config(_))
    ));
}
