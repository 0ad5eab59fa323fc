//! `Repository` for `PgRepository`: each method delegates to the module that owns its subject.

use super::PgRepository;
use crate::changes::{ChangeSet, CommitOutcome};
use crate::error::RepoResult;
use crate::model::{
    AuditEntry, AuditKind, ClaimedJob, DeadLetter, Job, Link, LockRecord, NodeRecord, NodeState,
    QueueStats, RunCounters, RunRecord, RunUpdate, SyncEvent,
};
use crate::repository::Repository;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use idsync_core::{Filter, QueryPage, QueryRequest};
use serde_json::Value;
use std::time::Duration;

#[async_trait]
impl Repository for PgRepository {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn commit(&self, changes: ChangeSet) -> RepoResult<CommitOutcome> {
        self.pg_commit(changes).await
    }

    async fn get_object(&self, object_type: &str, id: &str) -> RepoResult<Option<Value>> {
        self.pg_get_object(object_type, id).await
    }
    async fn get_objects(&self, object_type: &str, ids: &[String]) -> RepoResult<Vec<Value>> {
        self.pg_get_objects(object_type, ids).await
    }
    async fn query_objects(
        &self,
        object_type: &str,
        query: &QueryRequest,
    ) -> RepoResult<QueryPage> {
        self.pg_query_objects(object_type, query).await
    }
    async fn count_objects(&self, object_type: &str, filter: Option<&Filter>) -> RepoResult<u64> {
        self.pg_count_objects(object_type, filter).await
    }
    async fn ensure_indexes(&self, object_type: &str, properties: &[String]) -> RepoResult<()> {
        self.pg_ensure_indexes(object_type, properties).await
    }
    async fn explain_query(&self, object_type: &str, query: &QueryRequest) -> RepoResult<String> {
        self.pg_explain_query(object_type, query).await
    }

    async fn get_link(&self, id: &str) -> RepoResult<Option<Link>> {
        self.pg_get_link(id).await
    }
    async fn link_by_first(
        &self,
        link_type: &str,
        qualifier: &str,
        first_id: &str,
    ) -> RepoResult<Option<Link>> {
        self.pg_link_by("first_id", link_type, qualifier, first_id)
            .await
    }
    async fn link_by_second(
        &self,
        link_type: &str,
        qualifier: &str,
        second_id: &str,
    ) -> RepoResult<Option<Link>> {
        self.pg_link_by("second_id", link_type, qualifier, second_id)
            .await
    }
    async fn links_for_sources(
        &self,
        link_type: &str,
        first_ids: &[String],
    ) -> RepoResult<Vec<Link>> {
        self.pg_links_for("first_id", link_type, first_ids).await
    }
    async fn links_for_targets(
        &self,
        link_type: &str,
        second_ids: &[String],
    ) -> RepoResult<Vec<Link>> {
        self.pg_links_for("second_id", link_type, second_ids).await
    }
    async fn load_links(
        &self,
        link_type: &str,
        qualifier: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> RepoResult<Vec<Link>> {
        self.pg_load_links(link_type, qualifier, after, limit).await
    }
    async fn count_links(&self, link_type: &str) -> RepoResult<u64> {
        self.pg_count_links(link_type).await
    }
    async fn query_links(&self, query: &QueryRequest) -> RepoResult<QueryPage> {
        self.pg_query_links(query).await
    }

    async fn create_run(&self, run: &RunRecord) -> RepoResult<()> {
        self.pg_create_run(run).await
    }
    async fn update_run(&self, run_id: &str, update: &RunUpdate) -> RepoResult<RunRecord> {
        self.pg_update_run(run_id, update).await
    }
    async fn request_cancel(&self, run_id: &str) -> RepoResult<bool> {
        self.pg_request_cancel(run_id).await
    }
    async fn get_run(&self, run_id: &str) -> RepoResult<Option<RunRecord>> {
        self.pg_get_run(run_id).await
    }
    async fn list_runs(&self, mapping: Option<&str>) -> RepoResult<Vec<RunRecord>> {
        self.pg_list_runs(mapping).await
    }
    async fn active_run(&self, mapping: &str) -> RepoResult<Option<RunRecord>> {
        self.pg_active_run(mapping).await
    }
    async fn run_counters(&self, run_id: &str) -> RepoResult<RunCounters> {
        self.pg_run_counters(run_id).await
    }
    async fn prune_runs(&self, mapping: &str, keep: usize) -> RepoResult<u64> {
        self.pg_prune_runs(mapping, keep).await
    }

    async fn query_plan(&self, run_id: &str, query: &QueryRequest) -> RepoResult<QueryPage> {
        self.pg_query_plan(run_id, query).await
    }

    async fn claimed_among(&self, run_id: &str, ids: &[String]) -> RepoResult<Vec<String>> {
        self.pg_registry_among(run_id, ids, true).await
    }
    async fn unclaimed_target_ids(&self, run_id: &str, ids: &[String]) -> RepoResult<Vec<String>> {
        self.pg_registry_among(run_id, ids, false).await
    }
    async fn count_registered(&self, run_id: &str) -> RepoResult<u64> {
        self.pg_count_registered(run_id).await
    }
    async fn delete_registry(&self, run_id: &str) -> RepoResult<u64> {
        self.pg_delete_registry(run_id).await
    }
    async fn create_intents(&self, job_id: &str) -> RepoResult<Vec<String>> {
        self.pg_create_intents(job_id).await
    }

    async fn enqueue_job(&self, job: &Job) -> RepoResult<()> {
        self.pg_enqueue_job(job).await
    }
    async fn claim_next(
        &self,
        kinds: &[&str],
        node_id: &str,
        lease: Duration,
    ) -> RepoResult<Option<ClaimedJob>> {
        self.pg_claim_next(kinds, node_id, lease, false).await
    }
    async fn claim_recovered(
        &self,
        kinds: &[&str],
        node_id: &str,
        lease: Duration,
    ) -> RepoResult<Option<ClaimedJob>> {
        self.pg_claim_next(kinds, node_id, lease, true).await
    }
    async fn renew_lease(&self, job_id: &str, token: i64, lease: Duration) -> RepoResult<()> {
        self.pg_renew_lease(job_id, token, lease).await
    }
    async fn release_job(&self, job_id: &str, token: i64) -> RepoResult<()> {
        self.pg_release_job(job_id, token).await
    }
    async fn get_job(&self, job_id: &str) -> RepoResult<Option<Job>> {
        self.pg_get_job(job_id).await
    }
    async fn db_now(&self) -> RepoResult<DateTime<Utc>> {
        self.pg_db_now().await
    }
    async fn job_exists(&self, job_id: &str) -> RepoResult<bool> {
        self.pg_job_exists(job_id).await
    }
    async fn count_jobs(&self, run_id: &str) -> RepoResult<u64> {
        self.pg_count_jobs(run_id).await
    }
    async fn claimed_jobs(&self) -> RepoResult<Vec<Job>> {
        self.pg_claimed_jobs().await
    }
    async fn release_jobs_of_node(&self, node_id: &str) -> RepoResult<u64> {
        self.pg_release_jobs_of_node(node_id).await
    }

    async fn heartbeat(&self, node_id: &str, host: &str, now: DateTime<Utc>) -> RepoResult<()> {
        self.pg_heartbeat(node_id, host, now).await
    }
    async fn set_node_state(&self, node_id: &str, state: NodeState) -> RepoResult<()> {
        self.pg_set_node_state(node_id, state).await
    }
    async fn list_nodes(&self) -> RepoResult<Vec<NodeRecord>> {
        self.pg_list_nodes().await
    }

    async fn try_acquire_lock(&self, name: &str, node_id: &str) -> RepoResult<Option<i64>> {
        self.pg_try_acquire_lock(name, node_id).await
    }
    async fn release_lock(&self, name: &str, node_id: &str) -> RepoResult<bool> {
        self.pg_release_lock(name, node_id).await
    }
    async fn locks_of_node(&self, node_id: &str) -> RepoResult<Vec<LockRecord>> {
        self.pg_locks(Some(node_id)).await
    }
    async fn list_locks(&self) -> RepoResult<Vec<LockRecord>> {
        self.pg_locks(None).await
    }
    async fn release_locks_of_node(&self, node_id: &str) -> RepoResult<u64> {
        self.pg_release_locks_of_node(node_id).await
    }

    async fn query_queue(&self, query: &QueryRequest) -> RepoResult<QueryPage> {
        self.pg_query_queue(query).await
    }
    async fn get_event(&self, id: &str) -> RepoResult<Option<SyncEvent>> {
        self.pg_get_event(id).await
    }
    async fn acquire_events(
        &self,
        mapping: &str,
        node_id: &str,
        limit: usize,
    ) -> RepoResult<Vec<SyncEvent>> {
        self.pg_acquire_events(mapping, node_id, limit).await
    }
    async fn release_for_retry(
        &self,
        id: &str,
        remaining_retries: i64,
        node_id: &str,
    ) -> RepoResult<()> {
        self.pg_release_for_retry(id, remaining_retries, node_id)
            .await
    }
    async fn delete_event(&self, id: &str, by_node: Option<&str>) -> RepoResult<()> {
        self.pg_delete_event(id, by_node).await
    }
    async fn return_acquired_to_pending(&self, node_id: &str) -> RepoResult<u64> {
        self.pg_return_acquired_to_pending(node_id).await
    }
    async fn queue_stats(&self) -> RepoResult<Vec<QueueStats>> {
        self.pg_queue_stats().await
    }

    async fn add_dead_letter(&self, letter: &DeadLetter) -> RepoResult<()> {
        self.pg_add_dead_letter(letter).await
    }
    async fn query_dead_letters(&self, query: &QueryRequest) -> RepoResult<QueryPage> {
        self.pg_query_dead_letters(query).await
    }
    async fn get_dead_letter(&self, id: &str) -> RepoResult<Option<DeadLetter>> {
        self.pg_get_dead_letter(id).await
    }
    async fn delete_dead_letter(&self, id: &str) -> RepoResult<()> {
        self.pg_delete_dead_letter(id).await
    }

    async fn append_audit(&self, entries: &[AuditEntry]) -> RepoResult<()> {
        self.pg_append_audit(entries).await
    }
    async fn query_audit(&self, kind: AuditKind, query: &QueryRequest) -> RepoResult<QueryPage> {
        self.pg_query_audit(kind, query).await
    }
    async fn prune_audit(&self, kind: AuditKind, before: DateTime<Utc>) -> RepoResult<u64> {
        self.pg_prune_audit(kind, before).await
    }

    async fn get_sync_token(&self, source: &str) -> RepoResult<Option<Value>> {
        self.pg_get_sync_token(source).await
    }
    async fn set_sync_token(&self, source: &str, token: &Value) -> RepoResult<()> {
        self.pg_set_sync_token(source, token).await
    }

    async fn shared_key(&self, name: &str, candidate: &[u8]) -> RepoResult<Vec<u8>> {
        self.pg_shared_key(name, candidate).await
    }
}
