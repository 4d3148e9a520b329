//! Fail fast while the database is down. Opening a connection to a stopped server is retried by
//! the pool until its acquire timeout (seconds), so without this every request during an outage
//! would wait that long before answering 503 or being served a stale snapshot. After a failure to
//! reach the database, requests fail at once for a short cool-down; then one request at a time
//! probes, and the first success closes the breaker.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long requests fail at once after the database could not be reached.
pub const COOL_DOWN: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct Breaker {
    /// Until when (ms since the epoch) requests fail at once; 0: closed.
    open_until_ms: AtomicI64,
    /// A request is trying the database while the breaker is open.
    probing: AtomicBool,
}

/// What a request may do now.
#[derive(Debug, PartialEq, Eq)]
pub enum Pass {
    /// The database is believed up.
    Go,
    /// The database was down: this request tries it (and must report how it went).
    Probe,
    /// The database is down: fail at once.
    Refuse,
}

impl Breaker {
    pub fn check(&self, now_ms: i64) -> Pass {
        let until = self.open_until_ms.load(Ordering::Acquire);
        if until == 0 {
            return Pass::Go;
        }
        if now_ms < until || self.probing.swap(true, Ordering::AcqRel) {
            return Pass::Refuse;
        }
        Pass::Probe
    }

    /// The database answered: close.
    pub fn reached(&self) {
        self.open_until_ms.store(0, Ordering::Release);
        self.probing.store(false, Ordering::Release);
    }

    /// The database could not be reached: open (again) for the cool-down.
    pub fn unreachable(&self, now_ms: i64) {
        self.open_until_ms.store(now_ms + COOL_DOWN.as_millis() as i64, Ordering::Release);
        self.probing.store(false, Ordering::Release);
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_fast_while_open_then_lets_one_probe_through() {
        let b = Breaker::default();
        assert_eq!(b.check(0), Pass::Go);
        b.unreachable(1_000);
        assert_eq!(b.check(1_500), Pass::Refuse, "cooling down");
        assert_eq!(b.check(2_000), Pass::Probe, "one request tries");
        assert_eq!(b.check(2_001), Pass::Refuse, "while it probes, the others fail at once");
        b.unreachable(2_100);
        assert_eq!(b.check(2_200), Pass::Refuse);
        assert_eq!(b.check(3_100), Pass::Probe);
        b.reached();
        assert_eq!(b.check(3_101), Pass::Go);
    }
}
