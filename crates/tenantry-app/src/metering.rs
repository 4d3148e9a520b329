//! Metering: usage events from the request paths into the ledger, durable before the request is
//! answered, written in shared batches (group commit).
//!
//! A caller hands its events to [`Metering::record`] and waits; a flusher takes every event
//! queued so far (up to `max_batch`) and writes them in one ledger transaction
//! ([`crate::ports::Ledger::record_usage`]), then wakes every waiter of that batch. While one
//! batch is being written the next one gathers, so under load batches grow and the cost per
//! event falls; an idle server writes a lone event at once (no timer to wait for).
//!
//! Within an HTTP request the data plane does not record on its own: [`collect`] gathers the
//! events of the request's work, and the shell records them once, with the request's API call
//! and compute time, before it answers (one wait per request).

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use tenantry_domain::Label;
use tenantry_domain::cost::{Meter, UsageEvent};
use tenantry_domain::{Invalid, TenantId};
use time::OffsetDateTime;

use crate::access::PlatformScope;
use crate::error::AppError;
use crate::ports::Store;

/// Settings of the metering writer.
#[derive(Debug, Clone, Copy)]
pub struct MeteringConfig {
    /// Most events in one ledger transaction.
    pub max_batch: usize,
    /// Batches written at once (each its own transaction).
    pub flushers: usize,
    /// Requests that may wait for a flush at once; more wait to enqueue (backpressure).
    pub queue: usize,
}

impl Default for MeteringConfig {
    fn default() -> Self {
        Self { max_batch: 4_096, flushers: 2, queue: 8_192 }
    }
}

struct Job {
    events: Vec<UsageEvent>,
    done: oneshot::Sender<Result<(), String>>,
}

/// What the writer has done in this process (for `/metrics`).
#[derive(Debug, Default)]
pub struct MeteringStats {
    /// Events handed to flushes that committed (retries of recorded keys included).
    pub events: std::sync::atomic::AtomicU64,
    /// Flushes that committed.
    pub flushes: std::sync::atomic::AtomicU64,
    /// Flushes that failed (their requests were answered 503).
    pub failures: std::sync::atomic::AtomicU64,
}

/// The metering writer. Cheap to clone; the flushers stop when the last clone is dropped.
#[derive(Clone)]
pub struct Metering {
    queue: mpsc::Sender<Job>,
    stats: Arc<MeteringStats>,
}

/// What a request's work metered while [`collect`] ran it.
#[derive(Debug, Default)]
pub struct Collected {
    /// Events for the shell to record before it answers.
    pub events: Vec<UsageEvent>,
    /// The work recorded the request's API call itself (in its own transaction).
    pub call_billed: bool,
}

tokio::task_local! {
    static COLLECTING: RefCell<Collected>;
}

/// Runs `work`, gathering the events metered inside it instead of recording them; returns its
/// output and what it gathered, for the caller to record once.
pub async fn collect<F: Future>(work: F) -> (F::Output, Collected) {
    COLLECTING
        .scope(RefCell::new(Collected::default()), async move {
            let out = work.await;
            (out, COLLECTING.with(|c| c.take()))
        })
        .await
}

/// Whether this task runs inside [`collect`] (an HTTP request): then the request's API call is
/// the shell's to bill, unless the work bills it (see [`note_call_billed`]).
pub fn collecting() -> bool {
    COLLECTING.try_with(|_| ()).is_ok()
}

/// Tells [`collect`]'s caller that the request's API call was recorded with the work.
pub fn note_call_billed() {
    let _ = COLLECTING.try_with(|c| c.borrow_mut().call_billed = true);
}

impl Metering {
    /// Starts the flushers on the current runtime.
    pub fn start(store: Arc<dyn Store>, config: MeteringConfig) -> Self {
        let (queue, rx) = mpsc::channel::<Job>(config.queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let stats = Arc::new(MeteringStats::default());
        for _ in 0..config.flushers.max(1) {
            tokio::spawn(flusher(store.clone(), rx.clone(), config.max_batch.max(1), stats.clone()));
        }
        Self { queue, stats }
    }

    /// What the writer has done in this process.
    pub fn stats(&self) -> &MeteringStats {
        &self.stats
    }

    /// Records `events` and returns once they are durable (or could not be written).
    pub async fn record(&self, events: Vec<UsageEvent>) -> Result<(), AppError> {
        if events.is_empty() {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        self.queue
            .send(Job { events, done })
            .await
            .map_err(|_| AppError::Unexpected(anyhow::anyhow!("the metering writer has stopped")))?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AppError::Unavailable(anyhow::anyhow!("usage could not be recorded: {e}"))),
            Err(_) => Err(AppError::Unexpected(anyhow::anyhow!("the metering writer stopped mid-flush"))),
        }
    }

    /// Meters work done: inside [`collect`], adds the events to the request's; otherwise records
    /// them now.
    pub async fn meter(&self, events: Vec<UsageEvent>) -> Result<(), AppError> {
        let mut pending = Some(events);
        let gathered =
            COLLECTING.try_with(|c| c.borrow_mut().events.extend(pending.take().unwrap_or_default())).is_ok();
        match pending {
            Some(events) if !gathered => self.record(events).await,
            _ => Ok(()),
        }
    }
}

async fn flusher(
    store: Arc<dyn Store>,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    max_batch: usize,
    stats: Arc<MeteringStats>,
) {
    let writer = PlatformScope::system("metering");
    loop {
        // one flusher gathers at a time; it lets go before writing, so the next gathers meanwhile
        let jobs = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            let mut n = first.events.len();
            let mut jobs = vec![first];
            while n < max_batch {
                match rx.try_recv() {
                    Ok(job) => {
                        n += job.events.len();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            jobs
        };
        let mut events: Vec<UsageEvent> = Vec::with_capacity(jobs.iter().map(|j| j.events.len()).sum());
        let mut waiters = Vec::with_capacity(jobs.len());
        for job in jobs {
            events.extend(job.events);
            waiters.push(job.done);
        }
        let result = store.record_usage(&writer, &events).await.map(|_| ()).map_err(|e| format!("{e}"));
        use std::sync::atomic::Ordering::Relaxed;
        match &result {
            Ok(()) => {
                stats.flushes.fetch_add(1, Relaxed);
                stats.events.fetch_add(events.len() as u64, Relaxed);
            }
            Err(e) => {
                stats.failures.fetch_add(1, Relaxed);
                tracing::error!(events = events.len(), error = e.as_str(), "usage batch not recorded");
            }
        }
        for done in waiters {
            let _ = done.send(result.clone());
        }
    }
}

/// A fresh operation id for idempotency keys (128 random bits, hex).
pub fn operation_id() -> Result<String, AppError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("the OS random source failed: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The events of one operation: keys `<operation>:<meter>`, so a retried write of the same
/// operation counts once.
pub struct OperationUsage {
    tenant: TenantId,
    operation: String,
    at: OffsetDateTime,
    events: Vec<UsageEvent>,
}

impl OperationUsage {
    pub fn new(tenant: TenantId, operation: String, at: OffsetDateTime) -> Self {
        Self { tenant, operation, at, events: Vec::new() }
    }

    /// Adds `quantity` of `meter` (zero quantities are left out).
    pub fn add(mut self, meter: Meter, quantity: u64, model: Option<&str>) -> Result<Self, Invalid> {
        if quantity > 0 {
            let key = format!("{}:{}", self.operation, meter.as_str());
            let model = model.map(model_label);
            self.events.push(UsageEvent::new(self.tenant.clone(), meter, quantity, model, self.at, key)?);
        }
        Ok(self)
    }

    pub fn into_events(self) -> Vec<UsageEvent> {
        self.events
    }
}

/// A model name as a ledger label: lowercased, other characters as `-`, at most 64 long.
pub fn model_label(model: &str) -> Label {
    let cleaned: String = model
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() || "_-./:".contains(c) { c } else { '-' })
        .take(64)
        .collect();
    let cleaned = cleaned.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    Label::parse(cleaned).unwrap_or_else(|_| Label::parse("unknown-model").expect("a valid label"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_become_labels() {
        assert_eq!(model_label("tenantry-local-hash-v1").as_str(), "tenantry-local-hash-v1");
        assert_eq!(model_label("OpenAI/Text Embedding 3").as_str(), "openai/text-embedding-3");
        assert_eq!(model_label("--x").as_str(), "x");
        assert_eq!(model_label("").as_str(), "unknown-model");
    }
}
