//! Tenant health scoring (0–100) from p95 latency, error rate, query success rate and storage
//! utilization.
//!
//! The seed penalises absolute values, yet its own PractaThon expectations (Finance 100, Legal ~70)
//! only come out when penalties apply to the *excess over the healthy thresholds*. This is that
//! excess form, with the seed's per-signal slopes and caps:
//!
//! | signal | healthy | slope | cap |
//! |---|---|---|---|
//! | p95 latency | ≤ 500 ms | 10 points per 100 ms over | 30 |
//! | error rate | ≤ 1 % | 20 points per percentage point over | 40 |
//! | query success | ≥ 95 % | 3 points per percentage point under | 30 |
//! | storage utilization | ≤ 90 % | flat 20 once over | 20 |

use std::fmt;

pub const LATENCY_HEALTHY_MS: f64 = 500.0;
pub const ERROR_RATE_HEALTHY: f64 = 0.01;
pub const SUCCESS_RATE_HEALTHY: f64 = 0.95;
pub const STORAGE_HEALTHY: f64 = 0.90;

/// Validated monitoring signals. Invariants: latency is finite and ≥ 0; the three rates are in 0..=1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthSignals {
    latency_p95_ms: f64,
    error_rate: f64,
    query_success_rate: f64,
    storage_utilization: f64,
}

impl HealthSignals {
    pub fn new(
        latency_p95_ms: f64,
        error_rate: f64,
        query_success_rate: f64,
        storage_utilization: f64,
    ) -> Result<Self, crate::Invalid> {
        if !latency_p95_ms.is_finite() || latency_p95_ms < 0.0 {
            return Err(crate::Invalid::from(format!(
                "latency_p95 must be a non-negative number of milliseconds, got {latency_p95_ms}"
            )));
        }
        for (name, v) in [
            ("error_rate", error_rate),
            ("query_success_rate", query_success_rate),
            ("storage_utilization", storage_utilization),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(crate::Invalid::from(format!("{name} must be a fraction between 0 and 1, got {v}")));
            }
        }
        Ok(Self { latency_p95_ms, error_rate, query_success_rate, storage_utilization })
    }

    pub fn latency_p95_ms(&self) -> f64 {
        self.latency_p95_ms
    }
    pub fn error_rate(&self) -> f64 {
        self.error_rate
    }
    pub fn query_success_rate(&self) -> f64 {
        self.query_success_rate
    }
    pub fn storage_utilization(&self) -> f64 {
        self.storage_utilization
    }

    /// Scores the signals. The score is rounded to two decimals so that float noise
    /// (0.02 − 0.01 ≠ 0.01 exactly) never moves a tenant across a class boundary.
    pub fn score(&self) -> HealthReport {
        let latency_penalty = ((self.latency_p95_ms - LATENCY_HEALTHY_MS).max(0.0) / 100.0 * 10.0).min(30.0);
        let error_penalty = ((self.error_rate - ERROR_RATE_HEALTHY).max(0.0) * 100.0 * 20.0).min(40.0);
        let success_penalty = ((SUCCESS_RATE_HEALTHY - self.query_success_rate).max(0.0) * 100.0 * 3.0).min(30.0);
        let storage_penalty = if self.storage_utilization > STORAGE_HEALTHY { 20.0 } else { 0.0 };
        let raw = 100.0 - latency_penalty - error_penalty - success_penalty - storage_penalty;
        let score = ((raw.clamp(0.0, 100.0) * 100.0).round() / 100.0).clamp(0.0, 100.0);
        HealthReport {
            score,
            class: HealthClass::of(score),
            latency_penalty,
            error_penalty,
            success_penalty,
            storage_penalty,
        }
    }
}

/// The lowest score classed healthy.
pub const HEALTHY_MIN_SCORE: f64 = 70.0;
/// The lowest score classed warning; below it is critical.
pub const WARNING_MIN_SCORE: f64 = 50.0;

/// Healthy ≥ 70 > warning ≥ 50 > critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HealthClass {
    Healthy,
    Warning,
    Critical,
}

impl HealthClass {
    pub fn of(score: f64) -> Self {
        if score >= HEALTHY_MIN_SCORE {
            HealthClass::Healthy
        } else if score >= WARNING_MIN_SCORE {
            HealthClass::Warning
        } else {
            HealthClass::Critical
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HealthClass::Healthy => "healthy",
            HealthClass::Warning => "warning",
            HealthClass::Critical => "critical",
        }
    }
}

impl fmt::Display for HealthClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A score with the penalty each signal contributed, so an operator can see *why*.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthReport {
    pub score: f64,
    pub class: HealthClass,
    pub latency_penalty: f64,
    pub error_penalty: f64,
    pub success_penalty: f64,
    pub storage_penalty: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(signals: (f64, f64, f64, f64), score: f64, class: HealthClass) {
        let report = HealthSignals::new(signals.0, signals.1, signals.2, signals.3).unwrap().score();
        assert_eq!((report.score, report.class), (score, class), "{signals:?}");
    }

    #[test]
    fn seed_practathon_cases() {
        check((350.0, 0.005, 0.98, 0.70), 100.0, HealthClass::Healthy); // Finance
        check((600.0, 0.02, 0.95, 0.85), 70.0, HealthClass::Healthy); // Legal
        check((1200.0, 0.10, 0.80, 0.95), 0.0, HealthClass::Critical); // HR
    }

    #[test]
    fn slopes_caps_and_boundaries() {
        check((500.0, 0.01, 0.95, 0.90), 100.0, HealthClass::Healthy);
        check((700.0, 0.0, 1.0, 0.0), 80.0, HealthClass::Healthy);
        check((10_000.0, 0.0, 1.0, 0.0), 70.0, HealthClass::Healthy); // latency capped at 30
        check((0.0, 0.025, 1.0, 0.0), 70.0, HealthClass::Healthy);
        check((0.0, 1.0, 1.0, 0.0), 60.0, HealthClass::Warning); // errors capped at 40
        check((0.0, 0.0, 0.90, 0.0), 85.0, HealthClass::Healthy);
        check((0.0, 0.0, 0.0, 0.0), 70.0, HealthClass::Healthy); // success capped at 30
        check((0.0, 0.0, 1.0, 0.91), 80.0, HealthClass::Healthy);
        check((800.0, 0.02, 1.0, 0.0), 50.0, HealthClass::Warning);
        check((800.0, 0.0205, 1.0, 0.0), 49.0, HealthClass::Critical);
    }

    #[test]
    fn out_of_range_signals_are_refused() {
        assert!(HealthSignals::new(-1.0, 0.0, 1.0, 0.0).is_err());
        assert!(HealthSignals::new(f64::NAN, 0.0, 1.0, 0.0).is_err());
        assert!(HealthSignals::new(1.0, 1.5, 1.0, 0.0).is_err());
        assert!(HealthSignals::new(1.0, 0.0, -0.1, 0.0).is_err());
        assert!(HealthSignals::new(1.0, 0.0, 1.0, f64::INFINITY).is_err());
    }

    proptest! {
        #[test]
        fn score_is_bounded_and_monotone_in_latency(
            lat in 0.0f64..5000.0, extra in 0.0f64..5000.0,
            err in 0.0f64..=1.0, ok in 0.0f64..=1.0, st in 0.0f64..=1.0,
        ) {
            let a = HealthSignals::new(lat, err, ok, st).unwrap().score();
            let b = HealthSignals::new(lat + extra, err, ok, st).unwrap().score();
            prop_assert!((0.0..=100.0).contains(&a.score));
            prop_assert!(b.score <= a.score);
            prop_assert_eq!(a.class, HealthClass::of(a.score));
        }
    }
}
