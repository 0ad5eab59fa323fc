//! Queued synchronization (docs/operations.md#queued-sync-and-dead-letters): one consumer per
//! queued mapping, holding the mapping's lock. It polls `pageSize` PENDING events every
//! `pollingInterval` (the repository marks them ACQUIRED by this node), hands them to `workers`
//! tasks through a bounded in-memory queue, and runs each as the notify it records against that one
//! mapping.
//!
//! Batches: a worker takes its share of the objects whose next event is ready (at most
//! `pageSize`) and runs their events together (`Engine::sync_mapping_batch`): one link lookup,
//! then one commit holding every event's links and audit entries *and the deletion of each
//! event that succeeded* — a finished event and its effect are one transaction, so a crash
//! can never leave an event whose success was committed to run again. `workers` batches run at
//! once.
//!
//! Order: events of one object run one at a time in commit order. The repository never hands
//! out an event while an earlier event of its object is ACQUIRED, and in memory the events of an
//! object wait in that object's line; different objects run in parallel.
//!
//! Fencing: every commit that ends an event — its deletion with its sync writes, its dead
//! letter, its drop — carries the mapping lock's token ([`Op::HoldsLock`]) and must delete the
//! event this node holds ACQUIRED, else nothing commits: a node that lost the lock (found down,
//! its events given to another node) acks nothing and writes no link for the events it still
//! had in memory.
//!
//! Failure: the event stays ACQUIRED for `retryDelay`, then runs again, still ACQUIRED, with
//! one retry less (its later events wait behind it in its object's line). A node that must
//! hand the mapping over returns the event and its object's later events to PENDING, to be
//! polled again in order; a node that lost the lock only forgets them (recovery returned them
//! to PENDING, and another node may hold them now).
//! With no retry left, `postRetryAction` runs: log and drop, dead-letter, or a script (which
//! asks for another retry by throwing).
//!
//! Backpressure: past `maxQueueSize` events in memory, further submissions are rejected
//! (`rejected-executions`) and go back to PENDING untouched — never lost. While memory is full
//! the consumer does not poll at all.

use super::BatchItem;
use super::batch::BATCH_PARALLEL_ACTS;
use crate::Engine;
use crate::managed_set::new_id;
use chrono::Utc;
use idsync_config::{PostRetryAction, QueuedSync};
use idsync_repo::{DeadLetter, Op, SyncEvent};
use idsync_script::Script;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// The prefix of queued-mapping lock names.
pub const LOCK_PREFIX: &str = "sync-queue/";

/// The name of a queued mapping's lock.
pub fn lock_name(mapping: &str) -> String {
    format!("{LOCK_PREFIX}{mapping}")
}

/// Runs a consumer for every queued mapping until `stop` turns true; in-flight events finish.
/// Events polled but not started stay ACQUIRED by this node: the caller returns them to
/// PENDING (`return_acquired_to_pending`) after this returns.
pub async fn run_queue_consumers(engine: Arc<Engine>, stop: watch::Receiver<bool>) {
    let consumers: Vec<_> = engine
        .project
        .mappings
        .iter()
        .filter_map(|m| m.queued().map(|q| (m.name.clone(), q.clone())))
        .map(|(name, q)| tokio::spawn(Consumer::new(engine.clone(), name, q).run(stop.clone())))
        .collect();
    for c in consumers {
        if let Err(e) = c.await {
            tracing::error!(error = %e, "a queue consumer panicked");
        }
    }
}

/// Events in memory: per object, in commit order; the front one is running or next. Shared
/// with the worker running it, not copied (an event carries the object's old and new value).
#[derive(Debug, Default)]
struct Lines {
    objects: HashMap<String, VecDeque<Arc<SyncEvent>>>,
    count: usize,
}

struct Consumer {
    engine: Arc<Engine>,
    mapping: String,
    q: QueuedSync,
    lines: Mutex<Lines>,
    ready: mpsc::UnboundedSender<String>,
    ready_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
    script: Option<Script>,
    /// The token of the mapping's lock while this node holds it; 0 when it does not.
    token: AtomicI64,
    meters: Meters,
}

/// The consumer's metric series, looked up once each: a labelled `counter!`/`histogram!`
/// builds its key from cloned labels and finds the series on every call, several times per
/// event on the drain path. A series appears on its first use, as with the macros.
struct Meters {
    counters: Mutex<HashMap<&'static str, metrics::Counter>>,
    timings: Mutex<HashMap<&'static str, metrics::Histogram>>,
    batch_size: metrics::Histogram,
    batch_seconds: metrics::Histogram,
    poll_seconds: metrics::Histogram,
}

impl Meters {
    fn new(mapping: &str) -> Meters {
        let m = mapping.to_string();
        Meters {
            counters: Mutex::default(),
            timings: Mutex::default(),
            batch_size: metrics::histogram!("idsync_sync_queue_batch_size", "mapping" => m.clone()),
            batch_seconds: metrics::histogram!("idsync_sync_queue_batch_seconds", "mapping" => m.clone()),
            poll_seconds: metrics::histogram!("idsync_sync_queue_poll_pending_events_seconds", "mapping" => m),
        }
    }

    /// `idsync_sync_queue_action_total{mapping, action}`.
    fn counter(&self, mapping: &str, action: &'static str) -> metrics::Counter {
        series(
            &self.counters,
            action,
            || metrics::counter!("idsync_sync_queue_action_total", "mapping" => mapping.to_string(), "action" => action),
        )
    }

    /// `idsync_sync_queue_action_seconds{mapping, action}`.
    fn histogram(&self, mapping: &str, action: &'static str) -> metrics::Histogram {
        series(
            &self.timings,
            action,
            || metrics::histogram!("idsync_sync_queue_action_seconds", "mapping" => mapping.to_string(), "action" => action),
        )
    }
}

/// The handle of one action's series, registered on first use.
fn series<T: Clone>(
    known: &Mutex<HashMap<&'static str, T>>,
    action: &'static str,
    register: impl FnOnce() -> T,
) -> T {
    let mut known = known.lock().unwrap_or_else(|p| p.into_inner());
    known.entry(action).or_insert_with(register).clone()
}

impl Consumer {
    fn new(engine: Arc<Engine>, mapping: String, q: QueuedSync) -> Arc<Consumer> {
        let (ready, ready_rx) = mpsc::unbounded_channel();
        let script = match &q.post_retry_action {
            PostRetryAction::Script(spec) => {
                let place = format!("mapping {mapping} queuedSync postRetryAction");
                match super::failure_script::compile(spec, place, engine.script_host()) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::error!(mapping = %mapping, error = %e, "postRetryAction script does not compile; failed events will be retried");
                        None
                    }
                }
            }
            _ => None,
        };
        let meters = Meters::new(&mapping);
        Arc::new(Consumer {
            engine,
            mapping,
            q,
            lines: Mutex::new(Lines::default()),
            ready,
            ready_rx: tokio::sync::Mutex::new(ready_rx),
            script,
            token: AtomicI64::new(0),
            meters,
        })
    }

    async fn run(self: Arc<Self>, stop: watch::Receiver<bool>) {
        let workers: Vec<_> = (0..self.q.workers.max(1))
            .map(|_| tokio::spawn(self.clone().work(stop.clone())))
            .collect();
        self.clone().poll_loop(stop).await;
        for w in workers {
            let _ = w.await;
        }
    }

    /// The fence of every commit that ends an event: this node still holds the mapping's lock
    /// with the token it polled under.
    fn holds_lock(&self) -> Op {
        Op::HoldsLock {
            name: lock_name(&self.mapping),
            node_id: self.engine.node_id.clone(),
            token: self.token.load(Ordering::SeqCst),
        }
    }

    fn lines(&self) -> std::sync::MutexGuard<'_, Lines> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn metric(&self, action: &'static str) {
        self.metric_n(action, 1);
    }

    fn metric_n(&self, action: &'static str, n: u64) {
        if n > 0 {
            self.meters.counter(&self.mapping, action).increment(n);
        }
    }

    fn timing(&self, action: &'static str, since: Instant) {
        self.meters
            .histogram(&self.mapping, action)
            .record(since.elapsed().as_secs_f64());
    }

    /// Both ends of the mapping exist (a connector or type may be gone): else processing pauses.
    fn routes_ready(&self) -> bool {
        self.engine.mapping(&self.mapping).is_ok_and(|(m, _)| {
            self.engine.resources.object_set(&m.source).is_ok()
                && self.engine.resources.object_set(&m.target).is_ok()
        })
    }

    async fn poll_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let every = Duration::from_millis(self.q.polling_interval_ms.max(10));
        let node = self.engine.node_id.clone();
        let lock = lock_name(&self.mapping);
        let balance = &self.engine.queue_balance;
        let mut held = false;
        let mut paused = false;
        let mut last_depth = None;
        loop {
            if *stop.borrow() {
                if held {
                    balance.gave_up();
                }
                return;
            }
            let mut polled = 0;
            let surrender = held && balance.must_surrender(&self.mapping);
            if surrender {
                // Hand over only once nothing of this mapping is in memory: no event is ever
                // run by two nodes.
                if self.lines().count == 0 {
                    match self.engine.repo.release_lock(&lock, &node).await {
                        Ok(_) => {
                            held = false;
                            self.token.store(0, Ordering::SeqCst);
                            balance.gave_up();
                            balance.surrendered(&self.mapping);
                            tracing::info!(mapping = %self.mapping, "queue lock handed over");
                        }
                        Err(e) => {
                            tracing::warn!(mapping = %self.mapping, error = %e, "could not release the queue lock")
                        }
                    }
                }
            } else if held || balance.may_take() {
                match self.engine.repo.try_acquire_lock(&lock, &node).await {
                    Ok(Some(token)) => {
                        let before = self.token.swap(token, Ordering::SeqCst);
                        if held && before != token {
                            // Lost and taken again in between: what waits in memory was
                            // returned to PENDING meanwhile and will be polled again.
                            self.drop_waiting();
                            tracing::warn!(mapping = %self.mapping, "queue lock lost and taken again");
                        }
                        if !held {
                            held = true;
                            balance.took();
                            tracing::info!(mapping = %self.mapping, "queue lock taken: consuming");
                        }
                        let ready = self.routes_ready();
                        if ready == paused {
                            paused = !ready;
                            if paused {
                                tracing::warn!(mapping = %self.mapping, "queued sync paused: the mapping's source or target is not available");
                            } else {
                                tracing::info!(mapping = %self.mapping, "queued sync resumed");
                            }
                        }
                        // With memory full nothing could be accepted: leave the events
                        // PENDING instead of taking a page only to put it back.
                        let room = (self.lines().count as u64) < self.q.max_queue_size;
                        if ready && room {
                            match self.poll(&node).await {
                                Ok(n) => polled = n,
                                Err(e) => {
                                    tracing::warn!(mapping = %self.mapping, error = %e, "polling the sync queue failed")
                                }
                            }
                        }
                    }
                    Ok(None) => {
                        self.token.store(0, Ordering::SeqCst);
                        if held {
                            // Recovery gave the lock away (this node was taken for down): its
                            // events are PENDING again and belong to the new holder.
                            held = false;
                            balance.gave_up();
                            self.drop_waiting();
                            tracing::warn!(mapping = %self.mapping, "queue lock lost to another node");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(mapping = %self.mapping, error = %e, "could not take the queue lock")
                    }
                }
            }
            // Depth and age are an aggregate over the queue table: once a second is plenty.
            if held && last_depth.is_none_or(|t: Instant| t.elapsed() >= Duration::from_secs(1)) {
                self.record_depth().await;
                last_depth = Some(Instant::now());
            }
            // A full page means more is waiting: poll again at once, unless memory is full.
            let full_page = polled as u64 >= self.q.page_size
                && (self.lines().count as u64) < self.q.max_queue_size;
            if !full_page {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// Forgets the events waiting in memory (not the running ones, which finish).
    fn drop_waiting(&self) {
        let mut lines = self.lines();
        let mut kept = 0;
        for line in lines.objects.values_mut() {
            line.truncate(1);
            kept += line.len();
        }
        lines.count = kept;
    }

    /// One poll: acquire a page and submit it. Returns how many events were accepted.
    async fn poll(&self, node: &str) -> idsync_repo::RepoResult<usize> {
        let t = Instant::now();
        let events = self
            .engine
            .repo
            .acquire_events(&self.mapping, node, self.q.page_size as usize)
            .await?;
        self.meters.poll_seconds.record(t.elapsed().as_secs_f64());
        let mut accepted = 0;
        let mut rejecting = false;
        let mut rejected = Vec::new();
        self.metric_n("acquire", events.len() as u64);
        for ev in events {
            {
                let mut lines = self.lines();
                if !rejecting && (lines.count as u64) < self.q.max_queue_size {
                    lines.count += 1;
                    let rid = ev.resource_id.clone();
                    let line = lines.objects.entry(rid.clone()).or_default();
                    line.push_back(Arc::new(ev));
                    if line.len() == 1 {
                        let _ = self.ready.send(rid);
                    }
                    accepted += 1;
                    continue;
                }
            }
            // Once one submission is rejected, the rest of the page is too, so that no later
            // event of an object overtakes its rejected predecessor.
            rejecting = true;
            self.metric("rejected-executions");
            rejected.push(ev);
        }
        // Every rejected event is released, whatever happens to the others: one failed release
        // must not strand the rest of the page ACQUIRED with nothing in memory to run them.
        let mut failed = 0;
        for ev in &rejected {
            let mut r = self
                .engine
                .repo
                .release_for_retry(&ev.id, ev.remaining_retries, &self.engine.node_id)
                .await;
            if r.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                r = self
                    .engine
                    .repo
                    .release_for_retry(&ev.id, ev.remaining_retries, &self.engine.node_id)
                    .await;
            }
            if let Err(e) = r {
                failed += 1;
                tracing::error!(mapping = %self.mapping, event = %ev.id, error = %e, "could not release a rejected queue event; it returns to PENDING when this node restarts or is found down");
            }
        }
        if failed > 0 {
            tracing::warn!(mapping = %self.mapping, failed, released = rejected.len() - failed, "rejected events not all released");
        }
        Ok(accepted)
    }

    async fn record_depth(&self) {
        let Ok(stats) = self.engine.repo.queue_stats().await else {
            return;
        };
        let s = stats.iter().find(|s| s.mapping == self.mapping);
        let (pending, acquired, age) = s.map_or((0, 0, 0.0), |s| {
            let age = s.oldest_create_date.map_or(0.0, |d| {
                (Utc::now() - d).num_milliseconds().max(0) as f64 / 1000.0
            });
            (s.pending, s.acquired, age)
        });
        let m = self.mapping.clone();
        metrics::gauge!("idsync_sync_queue_depth", "mapping" => m.clone(), "state" => "PENDING")
            .set(pending as f64);
        metrics::gauge!("idsync_sync_queue_depth", "mapping" => m.clone(), "state" => "ACQUIRED")
            .set(acquired as f64);
        metrics::gauge!("idsync_sync_queue_oldest_event_age_seconds", "mapping" => m).set(age);
    }

    /// A worker: takes a batch of objects whose next event is ready — its share of what is
    /// ready, at most `pageSize` — and runs their events as one batch (one link lookup, one
    /// commit that also deletes the done events).
    async fn work(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let workers = self.q.workers.max(1) as usize;
        let most = (self.q.page_size as usize).max(1);
        loop {
            let rids = {
                let mut rx = self.ready_rx.lock().await;
                let first = tokio::select! {
                    r = rx.recv() => r,
                    _ = stop.changed() => None,
                };
                let Some(first) = first else { return };
                let share = (rx.len() / workers).min(most - 1);
                let mut rids = vec![first];
                while rids.len() <= share {
                    match rx.try_recv() {
                        Ok(r) => rids.push(r),
                        Err(_) => break,
                    }
                }
                rids
            };
            if *stop.borrow() {
                return;
            }
            let events: Vec<Arc<SyncEvent>> = {
                let lines = self.lines();
                rids.iter()
                    .filter_map(|rid| lines.objects.get(rid).and_then(|l| l.front().cloned()))
                    .collect()
            };
            if !events.is_empty() {
                self.process(events).await;
            }
        }
    }

    /// Runs a batch of events of different objects; each then finishes, retries or fails on
    /// its own.
    async fn process(self: &Arc<Self>, events: Vec<Arc<SyncEvent>>) {
        let t = Instant::now();
        let results = self.execute(&events).await;
        let elapsed = t.elapsed().as_secs_f64();
        self.meters.batch_size.record(events.len() as f64);
        self.meters.batch_seconds.record(elapsed);
        // Each event took as long as its batch.
        self.meters
            .histogram(&self.mapping, "execution")
            .record_many(elapsed, events.len());
        for (ev, result) in events.into_iter().zip(results) {
            match result {
                // Its deletion committed with its sync.
                Ok(()) => self.finished(&ev, "release", Instant::now()),
                Err(cause) => self.failed(ev, cause).await,
            }
        }
    }

    async fn failed(self: &Arc<Self>, ev: Arc<SyncEvent>, cause: String) {
        let rid = ev.resource_id.clone();
        self.metric("failed");
        // An event this node no longer holds (its lock was lost, recovery returned the event to
        // PENDING or another node ran it) leaves memory: its fenced commit failed, and retrying
        // it here would fail the same way forever.
        match self.engine.repo.get_event(&ev.id).await {
            Ok(Some(e))
                if e.state == idsync_repo::EventState::Acquired
                    && e.node_id.as_deref() == Some(self.engine.node_id.as_str()) => {}
            Ok(_) => {
                tracing::warn!(mapping = %self.mapping, event = %ev.id, "queued sync event failed and is no longer this node's: forgotten ({cause})");
                self.finished(&ev, "discard", Instant::now());
                return;
            }
            // Unsure: retry; the retry's commit is fenced.
            Err(_) => {}
        }
        if ev.remaining_retries != 0 {
            let remaining = if ev.remaining_retries < 0 {
                -1
            } else {
                ev.remaining_retries - 1
            };
            tracing::warn!(mapping = %self.mapping, id = %ev.resource_id, remaining, "queued sync event failed, retrying: {cause}");
            self.retry_later(&rid, &ev.id, remaining);
            return;
        }
        match self.post_retry(&ev, &cause).await {
            Ok(None) => self.discard(&ev).await,
            Ok(Some(letter)) => self.dead_letter(ev, letter).await,
            Err(e) => {
                tracing::warn!(mapping = %self.mapping, id = %ev.resource_id, "postRetryAction asked for a retry: {e}");
                self.retry_later(&rid, &ev.id, 0);
            }
        }
    }

    /// Runs the events as the notifies they record against this one mapping; one result per
    /// event, in order. A success has committed the event's deletion with its writes.
    async fn execute(&self, events: &[Arc<SyncEvent>]) -> Vec<Result<(), String>> {
        let node = &self.engine.node_id;
        let items = events
            .iter()
            .map(|ev| BatchItem {
                change: ev.as_ref().into(),
                on_success: vec![
                    self.holds_lock(),
                    Op::DeleteSyncEvent {
                        id: ev.id.clone(),
                        node_id: node.clone(),
                    },
                ],
            })
            .collect();
        // `workers` 1 is IDM's queue: one event at a time, in order. With more, objects run in
        // parallel: `workers` batches at once, and the events of a batch side by side.
        let parallel = if self.q.workers <= 1 {
            1
        } else {
            BATCH_PARALLEL_ACTS
        };
        match self
            .engine
            .sync_mapping_batch(&self.mapping, items, parallel)
            .await
        {
            Ok(results) => results
                .into_iter()
                .map(|r| match r {
                    Ok(o) if !o.failed => Ok(()),
                    Ok(o) => Err(o
                        .failure_message()
                        .unwrap_or_else(|| "synchronization failed".into())),
                    Err(e) => Err(e.to_string()),
                })
                .collect(),
            Err(e) => events.iter().map(|_| Err(e.to_string())).collect(),
        }
    }

    /// A dropped event (its retries exhausted and `postRetryAction` done): delete it, then
    /// start the object's next event.
    async fn discard(&self, ev: &SyncEvent) {
        let t = Instant::now();
        let cs = idsync_repo::ChangeSet::new()
            .with(self.holds_lock())
            .with(Op::DeleteSyncEvent {
                id: ev.id.clone(),
                node_id: self.engine.node_id.clone(),
            });
        if let Err(e) = self.engine.repo.commit(cs).await {
            // Not this node's any more (it runs elsewhere), or it stays ACQUIRED and a restart
            // returns it to PENDING to run again.
            tracing::error!(mapping = %self.mapping, event = %ev.id, error = %e, "could not delete a dropped queue event");
        }
        self.finished(ev, "discard", t);
    }

    /// Dead-letters an event: the letter and the event's deletion are one commit, which only
    /// applies while this node holds the event. If the commit fails, the event is retried and
    /// dead-lettered again (nothing of the failed commit exists); if the event is no longer this
    /// node's, it leaves this node's memory.
    async fn dead_letter(self: &Arc<Self>, ev: Arc<SyncEvent>, letter: DeadLetter) {
        let t = Instant::now();
        let node = self.engine.node_id.clone();
        let result = async {
            fail::fail_point!("queue.deadletter.before_commit", |_| Err(
                idsync_repo::RepoError::Internal(
                    "failpoint queue.deadletter.before_commit fired".into()
                )
            ));
            let cs =
                idsync_repo::ChangeSet::new()
                    .with(self.holds_lock())
                    .with(Op::DeadLetterEvent {
                        letter,
                        node_id: node,
                    });
            self.engine.repo.commit(cs).await.map(|_| ())
        }
        .await;
        match result {
            Ok(()) => {
                tracing::warn!(mapping = %self.mapping, id = %ev.resource_id, "queued sync retries exhausted, event dead-lettered");
                self.finished(&ev, "discard", t);
            }
            Err(
                e @ (idsync_repo::RepoError::NotFound(_) | idsync_repo::RepoError::LockLost { .. }),
            ) => {
                tracing::error!(mapping = %self.mapping, event = %ev.id, "a dead letter was not written: the event is no longer this node's ({e})");
                self.finished(&ev, "discard", t);
            }
            Err(e) => {
                tracing::error!(mapping = %self.mapping, event = %ev.id, error = %e, "could not dead-letter a queue event; retrying it");
                self.retry_later(&ev.resource_id, &ev.id, 0);
            }
        }
    }

    /// The event is out of the repository: take it off its object's line and start the next.
    fn finished(&self, ev: &SyncEvent, action: &'static str, since: Instant) {
        self.timing(action, since);
        let rid = &ev.resource_id;
        let mut lines = self.lines();
        lines.count = lines.count.saturating_sub(1);
        if let Some(line) = lines.objects.get_mut(rid) {
            line.pop_front();
            if line.is_empty() {
                lines.objects.remove(rid);
            } else {
                let _ = self.ready.send(rid.to_string());
            }
        }
    }

    /// After `retryDelay` the event runs again, ACQUIRED all along (SPEC: an event waiting for
    /// its retry is not PENDING): it stays at the front of its object's line with one retry
    /// less, and the object is ready again. Only when this node may no longer run it — its lock
    /// was taken over, or balancing asks it to hand the mapping over — do the event and its
    /// object's later events go back to PENDING, to be polled again in commit order.
    fn retry_later(self: &Arc<Self>, rid: &str, event_id: &str, remaining: i64) {
        let this = self.clone();
        let (rid, event_id) = (rid.to_string(), event_id.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(this.q.retry_delay_ms)).await;
            let t = Instant::now();
            let holds = this.holds_the_lock().await;
            let surrender = this.engine.queue_balance.must_surrender(&this.mapping);
            if holds && !surrender && this.retry_in_place(&rid, &event_id, remaining) {
                this.timing("retry", t);
                return;
            }
            let line = {
                let mut lines = this.lines();
                let line = lines.objects.remove(&rid).unwrap_or_default();
                lines.count = lines.count.saturating_sub(line.len());
                line
            };
            if !holds {
                // Lost: recovery returned these events to PENDING and another node may run
                // them now; releasing them would take them from under it.
                tracing::warn!(mapping = %this.mapping, id = %rid, "queue lock lost: events forgotten, not released");
                return;
            }
            for ev in line {
                let r = if ev.id == event_id {
                    remaining
                } else {
                    ev.remaining_retries
                };
                if let Err(e) = this
                    .engine
                    .repo
                    .release_for_retry(&ev.id, r, &this.engine.node_id)
                    .await
                {
                    tracing::error!(mapping = %this.mapping, event = %ev.id, error = %e, "could not release a queue event for retry");
                }
            }
            this.timing("release-for-retry", t);
        });
    }

    /// Whether this node still holds the mapping's lock with the token it polled under (true
    /// when the repository cannot tell).
    async fn holds_the_lock(&self) -> bool {
        let lock = lock_name(&self.mapping);
        let token = self.token.load(Ordering::SeqCst);
        match self.engine.repo.locks_of_node(&self.engine.node_id).await {
            Ok(locks) => locks.iter().any(|l| l.name == lock && l.token == token),
            Err(e) => {
                // Retrying in place is safe while unsure: the retry's commit is fenced by the
                // lock's token and writes nothing if the lock was lost.
                tracing::warn!(mapping = %self.mapping, error = %e, "could not check the queue lock before a retry");
                true
            }
        }
    }

    /// Puts the failed event back at the front of its line with `remaining` retries and makes
    /// its object ready. False if the event is no longer in memory.
    fn retry_in_place(&self, rid: &str, event_id: &str, remaining: i64) -> bool {
        let mut lines = self.lines();
        let Some(front) = lines.objects.get_mut(rid).and_then(|l| l.front_mut()) else {
            return false;
        };
        if front.id != event_id {
            return false;
        }
        let mut ev = SyncEvent::clone(front);
        ev.remaining_retries = remaining;
        *front = Arc::new(ev);
        drop(lines);
        self.metric("retry");
        let _ = self.ready.send(rid.to_string());
        true
    }

    fn letter(&self, ev: &SyncEvent, cause: &str) -> DeadLetter {
        DeadLetter {
            id: new_id(),
            event: ev.clone(),
            failure_cause: cause.to_string(),
            retries: self.q.max_retries.map_or(0, |r| r as i64),
            failed_date: Utc::now(),
        }
    }

    /// `postRetryAction` (docs/configuration.md): `Ok(None)` drops the event, `Ok(Some)` dead-letters
    /// it (committed with its deletion), `Err` asks for a retry.
    async fn post_retry(&self, ev: &SyncEvent, cause: &str) -> Result<Option<DeadLetter>, String> {
        match &self.q.post_retry_action {
            PostRetryAction::LoggedIgnore => {
                tracing::warn!(mapping = %self.mapping, id = %ev.resource_id, action = ev.sync_action.as_str(), "queued sync retries exhausted, event dropped (logged-ignore): {cause}");
                Ok(None)
            }
            PostRetryAction::DeadLetterQueue => Ok(Some(self.letter(ev, cause))),
            PostRetryAction::Script(_) => {
                let script = self
                    .script
                    .as_ref()
                    .ok_or_else(|| "the postRetryAction script does not compile".to_string())?;
                let mut failure = ev.to_json();
                if let Value::Object(m) = &mut failure {
                    m.insert("oldObject".into(), json!(ev.old_object));
                    m.insert("newObject".into(), json!(ev.new_object));
                }
                let handed = super::failure_script::run(script, failure, cause)?;
                // A script that handed the event to IDM's dead-letter handler dead-letters it
                // (with its deletion, as the dead-letter action does); otherwise it is dropped.
                if handed.contains(&super::failure_script::Handed::DeadLetterQueue) {
                    return Ok(Some(self.letter(ev, cause)));
                }
                if handed.contains(&super::failure_script::Handed::LoggedIgnore) {
                    tracing::warn!(mapping = %self.mapping, id = %ev.resource_id, action = ev.sync_action.as_str(), "queued sync retries exhausted, event dropped by the postRetryAction script (loggedIgnore): {cause}");
                }
                Ok(None)
            }
        }
    }
}
