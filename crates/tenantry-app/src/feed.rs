//! The change feed as an invalidation bus, and the servers' reports of how far they have applied
//! their bus.
//!
//! `StoreBus` numbers invalidations in the store ([`ChangeFeed`]), so every process that shares
//! the store — each `serve` and every CLI command — hears every change without Redis: a server
//! polls the feed. Servers report their progress ([`ReplicaReporter`]); a command that changed
//! something waits with [`crate::App::settle`] until every running server on its bus has applied
//! the change, so the next request to any of them sees it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::cache::{ConfigCache, Invalidation, InvalidationBus, InvalidationTarget};
use crate::error::StoreError;
use crate::ports::{Clock, ReplicaRow, Store};

/// How many feed entries one poll reads at most.
const POLL_BATCH: u32 = 1000;

/// Consecutive failed reads of the feed before a warning is logged.
const FAILURES_WORTH_A_WARNING: u32 = 3;

/// A server whose last report is older than this is taken to be gone.
pub const REPLICA_LIVENESS: Duration = Duration::from_secs(10);

/// Feed entries older than this are trimmed (a server that was away longer resyncs).
const FEED_RETENTION: time::Duration = time::Duration::hours(1);

/// Invalidations numbered and kept in the store.
pub struct StoreBus {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    poll: Duration,
    last_published: AtomicU64,
}

impl StoreBus {
    /// The bus's name in replica reports.
    pub const NAME: &'static str = "store";

    /// A bus over `store`'s feed, read every `poll` by [`InvalidationBus::deliver_to`].
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, poll: Duration) -> Self {
        Self { store, clock, poll, last_published: AtomicU64::new(0) }
    }
}

#[async_trait]
impl InvalidationBus for StoreBus {
    async fn publish(&self, target: InvalidationTarget) -> Result<Invalidation, StoreError> {
        let seq = self.store.feed_append(&target, self.clock.now()).await?;
        self.last_published.fetch_max(seq, Ordering::Relaxed);
        Ok(Invalidation { seq, target })
    }

    async fn deliver_to(&self, cache: ConfigCache) -> anyhow::Result<()> {
        let mut after = self.store.feed_head().await?;
        let (store, poll) = (self.store.clone(), self.poll);
        tokio::spawn(async move {
            // consecutive failed reads; said once it is more than a blip (a process shutting
            // down closes its pool under the poller: that is not worth a line)
            let mut failures = 0u32;
            loop {
                tokio::time::sleep(poll).await;
                match store.feed_after(after, POLL_BATCH).await {
                    Ok(messages) => {
                        if failures >= FAILURES_WORTH_A_WARNING {
                            tracing::info!("the change feed is readable again");
                        }
                        failures = 0;
                        if messages.first().is_some_and(|m| m.seq > after + 1) {
                            // entries were trimmed while this replica could not read: start over
                            cache.resync();
                        }
                        for message in messages {
                            after = message.seq;
                            cache.apply(&message);
                        }
                    }
                    Err(e) => {
                        failures += 1;
                        if failures == FAILURES_WORTH_A_WARNING {
                            tracing::warn!(error = %e, "cannot read the change feed; retrying");
                        }
                    }
                }
            }
        });
        Ok(())
    }

    fn name(&self) -> String {
        Self::NAME.to_owned()
    }

    fn last_published(&self) -> u64 {
        self.last_published.load(Ordering::Relaxed)
    }
}

/// Reports a server's progress on its bus to the store, and trims the feed.
pub struct ReplicaReporter {
    store: Arc<dyn Store>,
    id: String,
    task: tokio::task::JoinHandle<()>,
}

impl ReplicaReporter {
    /// Reports `cache`'s applied sequence number under `id` once before returning (so a server
    /// is known before it takes its first request), then every 100 ms when it moved and every 2 s
    /// regardless (the liveness signal); trims feed entries older than an hour once a minute.
    pub async fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        bus: &dyn InvalidationBus,
        cache: ConfigCache,
        id: String,
    ) -> Self {
        let started_at = clock.now();
        let bus = bus.name();
        let report = {
            let (store, clock, id) = (store.clone(), clock.clone(), id.clone());
            move |applied: u64| {
                let (store, row) = (
                    store.clone(),
                    ReplicaRow {
                        replica_id: id.clone(),
                        bus: bus.clone(),
                        applied_seq: applied,
                        started_at,
                        seen_at: clock.now(),
                    },
                );
                async move { store.replica_report(&row).await }
            }
        };
        let mut reported = match report(cache.last_seq().unwrap_or(0)).await {
            Ok(()) => Some((cache.last_seq().unwrap_or(0), std::time::Instant::now())),
            Err(e) => {
                tracing::warn!(error = %e, "cannot report this replica's progress");
                None
            }
        };
        let task_store = store.clone();
        let task = tokio::spawn(async move {
            let mut trimmed = std::time::Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                let applied = cache.last_seq().unwrap_or(0);
                let due = reported.is_none_or(|(seq, at)| seq != applied || at.elapsed() >= Duration::from_secs(2));
                if due {
                    match report(applied).await {
                        Ok(()) => reported = Some((applied, std::time::Instant::now())),
                        Err(e) => tracing::warn!(error = %e, "cannot report this replica's progress"),
                    }
                }
                if trimmed.elapsed() >= Duration::from_secs(60) {
                    trimmed = std::time::Instant::now();
                    if let Err(e) = task_store.feed_trim(clock.now() - FEED_RETENTION).await {
                        tracing::warn!(error = %e, "cannot trim the change feed");
                    }
                }
            }
        });
        Self { store, id, task }
    }

    /// Stops reporting and removes this server's report (it is shutting down).
    pub async fn leave(self) {
        self.task.abort();
        if let Err(e) = self.store.replica_leave(&self.id).await {
            tracing::warn!(error = %e, "cannot remove this replica's report");
        }
    }
}

/// What [`crate::App::settle`] found: which running servers applied this process's last change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    /// The last sequence number this process published on its bus (0: it changed nothing).
    pub published: u64,
    /// Running servers on the same bus that have applied it.
    pub confirmed: Vec<String>,
    /// Running servers on the same bus that had not applied it when the wait ended.
    pub lagging: Vec<String>,
    /// Running servers on another bus (id, bus): they were not told; their caches expire.
    pub elsewhere: Vec<(String, String)>,
}

/// Sorts `replicas` (reports read at `now`) by whether they have applied `published` on `bus`.
pub fn settled(replicas: &[ReplicaRow], bus: &str, published: u64, now: time::OffsetDateTime) -> Settled {
    let mut out = Settled { published, ..Settled::default() };
    let live = replicas.iter().filter(|r| now - r.seen_at <= REPLICA_LIVENESS);
    for r in live {
        if r.bus != bus {
            out.elsewhere.push((r.replica_id.clone(), r.bus.clone()));
        } else if r.applied_seq >= published {
            out.confirmed.push(r.replica_id.clone());
        } else {
            out.lagging.push(r.replica_id.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, bus: &str, applied: u64, age_secs: i64, now: time::OffsetDateTime) -> ReplicaRow {
        ReplicaRow {
            replica_id: id.to_owned(),
            bus: bus.to_owned(),
            applied_seq: applied,
            started_at: now - time::Duration::hours(1),
            seen_at: now - time::Duration::seconds(age_secs),
        }
    }

    #[test]
    fn replicas_are_sorted_by_bus_progress_and_liveness() {
        let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let rows = [
            row("a", "store", 7, 1, now),
            row("b", "store", 6, 1, now),
            row("c", "redis:", 100, 1, now),
            row("gone", "store", 0, 60, now),
        ];
        let s = settled(&rows, "store", 7, now);
        assert_eq!(s.confirmed, ["a"]);
        assert_eq!(s.lagging, ["b"]);
        assert_eq!(s.elsewhere, [("c".to_owned(), "redis:".to_owned())]);
    }
}
