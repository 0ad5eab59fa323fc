//! Metrics of the engine (docs/operations.md#monitoring): connector call latency and errors per
//! connector, recon objects per situation and action, page timers, job claims, lease takeovers and
//! cluster heartbeats.
//!
//! Everything goes through the `metrics` facade: without an installed recorder (`idsync recon`,
//! tests) every call is a no-op. `idsync serve` installs a Prometheus recorder and renders it at
//! `GET /openidm/metrics/prometheus`. Label values are bounded sets (connector names, mapping
//! names, situations, actions, job kinds), never object ids.

use async_trait::async_trait;
use idsync_connectors::{ChangeBatch, ConnectorResult, ObjectSet};
use idsync_core::{QueryPage, QueryRequest};
use metrics::{Counter, Histogram, counter, histogram};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Metric names (stable: dashboards and alerts use them).
pub mod names {
    /// Histogram, seconds, labels `connector`, `op`.
    pub const CONNECTOR_CALL_DURATION: &str = "idsync_connector_call_duration_seconds";
    /// Counter, labels `connector`, `op`.
    pub const CONNECTOR_ERRORS: &str = "idsync_connector_errors_total";
    /// Counter, labels `mapping`, `situation`, `action` (committed recon decisions, dry runs
    /// excluded).
    pub const RECON_OBJECTS: &str = "idsync_recon_objects_total";
    /// Histogram, seconds, labels `mapping`, `phase` (`source` | `target`): one committed page
    /// (or chunk) from the start of its work to the end of its commit.
    pub const RECON_PAGE_DURATION: &str = "idsync_recon_page_duration_seconds";
    /// Counter, label `kind`: jobs this node's worker claimed.
    pub const JOBS_CLAIMED: &str = "idsync_jobs_claimed_total";
    /// Counter, label `kind`: jobs this node was running when another node took their lease
    /// over (its fenced commit was refused).
    pub const LEASE_TAKEOVERS: &str = "idsync_cluster_lease_takeovers_total";
    /// Counter: heartbeats this node wrote.
    pub const HEARTBEATS: &str = "idsync_cluster_heartbeats_total";
    /// Counter: heartbeats this node failed to write.
    pub const HEARTBEAT_FAILURES: &str = "idsync_cluster_heartbeat_failures_total";
    /// Counter, label `source`: liveSync changes applied (committed with their token).
    pub const LIVESYNC_CHANGES: &str = "idsync_livesync_changes_total";
    /// Histogram, seconds, label `source`: from a change in the source (its time there, where
    /// the connector reads one) to the commit of its application.
    pub const LIVESYNC_LAG: &str = "idsync_livesync_lag_seconds";
}

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns the engine's metrics on: registers their HELP texts with the installed recorder and
/// enables the tallies that cost work even when nothing records them (recon decisions per
/// situation and action). Call once, after installing a recorder.
pub fn enable() {
    use metrics::{Unit, describe_counter, describe_histogram};
    ENABLED.store(true, Ordering::Relaxed);
    describe_histogram!(
        names::CONNECTOR_CALL_DURATION,
        Unit::Seconds,
        "Duration of connector object-set calls, per connector and operation"
    );
    describe_counter!(
        names::CONNECTOR_ERRORS,
        "Connector object-set calls that returned an error, per connector and operation"
    );
    describe_counter!(
        names::LIVESYNC_CHANGES,
        "liveSync changes applied, per source"
    );
    describe_histogram!(
        names::LIVESYNC_LAG,
        Unit::Seconds,
        "liveSync lag from a change's time in the source to the commit of its application"
    );
    describe_counter!(
        names::RECON_OBJECTS,
        "Reconciliation decisions committed, per mapping, situation and action (dry runs excluded)"
    );
    describe_histogram!(
        names::RECON_PAGE_DURATION,
        Unit::Seconds,
        "Duration of a reconciliation page or chunk, from the start of its work to its commit"
    );
    describe_counter!(names::JOBS_CLAIMED, "Jobs claimed by this node, per kind");
    describe_counter!(
        names::LEASE_TAKEOVERS,
        "Jobs whose lease another node took over while this node ran them, per kind"
    );
    describe_counter!(names::HEARTBEATS, "Cluster heartbeats written by this node");
    describe_counter!(
        names::HEARTBEAT_FAILURES,
        "Cluster heartbeats this node failed to write"
    );
}

/// Whether [`enable`] was called in this process.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Counts one heartbeat of this node (the binary's heartbeat loop calls it).
pub fn heartbeat(ok: bool) {
    if ok {
        counter!(names::HEARTBEATS).increment(1);
    } else {
        counter!(names::HEARTBEAT_FAILURES).increment(1);
    }
}

/// Counts a job claimed by this node's worker.
pub fn job_claimed(kind: &str) {
    counter!(names::JOBS_CLAIMED, "kind" => kind.to_string()).increment(1);
}

/// Counts a job whose lease another node took over.
pub fn lease_taken_over(kind: &str) {
    counter!(names::LEASE_TAKEOVERS, "kind" => kind.to_string()).increment(1);
}

/// The timer and error counter of one operation of one connector.
#[derive(Debug)]
struct Handles {
    duration: Histogram,
    errors: Counter,
}

/// The handles of one operation, resolved at its first call: only operations a connector is
/// actually asked for get series (with their error counter at 0, so that rates work from the
/// first call on).
#[derive(Debug)]
struct OpMetrics {
    op: &'static str,
    handles: OnceLock<Handles>,
}

impl OpMetrics {
    fn new(op: &'static str) -> Self {
        Self {
            op,
            handles: OnceLock::new(),
        }
    }

    fn observe<T>(&self, connector: &str, started: Instant, result: &ConnectorResult<T>) {
        let h = self.handles.get_or_init(|| Handles {
            duration: histogram!(names::CONNECTOR_CALL_DURATION,
                "connector" => connector.to_string(), "op" => self.op),
            errors: counter!(names::CONNECTOR_ERRORS,
                "connector" => connector.to_string(), "op" => self.op),
        });
        h.duration.record(started.elapsed().as_secs_f64());
        if result.is_err() {
            h.errors.increment(1);
        }
    }
}

/// A connector's object set that records the latency and the errors of every call
/// (`idsync_connector_call_duration_seconds` and `idsync_connector_errors_total`, labelled with
/// the connector's name and the operation). Every error counts, including "not found" answers
/// to a read-before-write. Behaviour is the inner set's, unchanged.
#[derive(Debug)]
pub struct MeteredObjectSet {
    inner: Arc<dyn ObjectSet>,
    connector: String,
    get: OpMetrics,
    get_many: OpMetrics,
    query: OpMetrics,
    count: OpMetrics,
    create: OpMetrics,
    update: OpMetrics,
    delete: OpMetrics,
    changes_since: OpMetrics,
}

impl MeteredObjectSet {
    /// Wraps `inner`, the object set of connector `connector`. An operation's metric handles
    /// are resolved at its first call, against the recorder installed then.
    pub fn new(connector: &str, inner: Arc<dyn ObjectSet>) -> Self {
        Self {
            inner,
            connector: connector.to_string(),
            get: OpMetrics::new("get"),
            get_many: OpMetrics::new("get_many"),
            query: OpMetrics::new("query"),
            count: OpMetrics::new("count"),
            create: OpMetrics::new("create"),
            update: OpMetrics::new("update"),
            delete: OpMetrics::new("delete"),
            changes_since: OpMetrics::new("changes_since"),
        }
    }
}

#[async_trait]
impl ObjectSet for MeteredObjectSet {
    async fn get(&self, id: &str) -> ConnectorResult<Option<Value>> {
        let t = Instant::now();
        let r = self.inner.get(id).await;
        self.get.observe(&self.connector, t, &r);
        r
    }

    async fn get_many(&self, ids: &[String]) -> ConnectorResult<Vec<Value>> {
        let t = Instant::now();
        let r = self.inner.get_many(ids).await;
        self.get_many.observe(&self.connector, t, &r);
        r
    }

    async fn query(&self, request: &QueryRequest) -> ConnectorResult<QueryPage> {
        let t = Instant::now();
        let r = self.inner.query(request).await;
        self.query.observe(&self.connector, t, &r);
        r
    }

    fn creation_id(&self, id: Option<&str>, object: &Value) -> Option<String> {
        self.inner.creation_id(id, object)
    }

    async fn find_existing(
        &self,
        id: Option<&str>,
        object: &Value,
    ) -> ConnectorResult<Option<Value>> {
        let t = Instant::now();
        let r = self.inner.find_existing(id, object).await;
        self.get.observe(&self.connector, t, &r);
        r
    }

    async fn query_resumable(&self, request: &QueryRequest) -> ConnectorResult<QueryPage> {
        let t = Instant::now();
        let r = self.inner.query_resumable(request).await;
        self.query.observe(&self.connector, t, &r);
        r
    }

    async fn count(&self) -> ConnectorResult<Option<u64>> {
        let t = Instant::now();
        let r = self.inner.count().await;
        self.count.observe(&self.connector, t, &r);
        r
    }

    async fn create(&self, id: Option<&str>, object: Value) -> ConnectorResult<Value> {
        let t = Instant::now();
        let r = self.inner.create(id, object).await;
        self.create.observe(&self.connector, t, &r);
        r
    }

    async fn update(&self, id: &str, rev: Option<&str>, object: Value) -> ConnectorResult<Value> {
        let t = Instant::now();
        let r = self.inner.update(id, rev, object).await;
        self.update.observe(&self.connector, t, &r);
        r
    }

    async fn delete(&self, id: &str, rev: Option<&str>) -> ConnectorResult<Option<Value>> {
        let t = Instant::now();
        let r = self.inner.delete(id, rev).await;
        self.delete.observe(&self.connector, t, &r);
        r
    }

    async fn changes_since(&self, token: Option<&Value>) -> ConnectorResult<ChangeBatch> {
        let t = Instant::now();
        let r = self.inner.changes_since(token).await;
        self.changes_since.observe(&self.connector, t, &r);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idsync_connectors::ConnectorError;
    use metrics_exporter_prometheus::PrometheusBuilder;

    /// An in-memory set whose `get` fails for ids starting with `bad`.
    #[derive(Debug, Default)]
    struct Fixed;

    #[async_trait]
    impl ObjectSet for Fixed {
        async fn get(&self, id: &str) -> ConnectorResult<Option<Value>> {
            if id.starts_with("bad") {
                return Err(ConnectorError::Unavailable("down".into()));
            }
            Ok(Some(serde_json::json!({"_id": id})))
        }
        async fn query(&self, _: &QueryRequest) -> ConnectorResult<QueryPage> {
            Err(ConnectorError::BadRequest("no queries".into()))
        }
        async fn count(&self) -> ConnectorResult<Option<u64>> {
            Ok(Some(1))
        }
        async fn create(&self, _: Option<&str>, o: Value) -> ConnectorResult<Value> {
            Ok(o)
        }
        async fn update(&self, _: &str, _: Option<&str>, o: Value) -> ConnectorResult<Value> {
            Ok(o)
        }
        async fn delete(&self, _: &str, _: Option<&str>) -> ConnectorResult<Option<Value>> {
            Ok(None)
        }
    }

    #[test]
    fn calls_are_timed_and_errors_counted_per_connector_and_op() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        metrics::with_local_recorder(&recorder, || {
            let set = MeteredObjectSet::new("hr", Arc::new(Fixed));
            rt.block_on(async {
                assert_eq!(
                    set.get("u1").await,
                    Ok(Some(serde_json::json!({"_id": "u1"})))
                );
                assert!(set.get("bad1").await.is_err());
                assert!(set.get("bad2").await.is_err());
                assert!(set.query(&QueryRequest::default()).await.is_err());
                assert_eq!(set.count().await, Ok(Some(1)));
                // Not overridden by the inner set: still forwarded and rejected.
                assert!(set.changes_since(None).await.is_err());
            });
        });
        let text = handle.render();
        assert!(
            !text.contains(r#"op="delete""#),
            "an operation never called has no series: {text}"
        );
        assert!(
            text.contains(r#"idsync_connector_errors_total{connector="hr",op="get"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"idsync_connector_errors_total{connector="hr",op="query"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"idsync_connector_errors_total{connector="hr",op="count"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"idsync_connector_errors_total{connector="hr",op="changes_since"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"idsync_connector_call_duration_seconds_count{connector="hr",op="get"} 3"#
            ),
            "{text}"
        );
    }
}
