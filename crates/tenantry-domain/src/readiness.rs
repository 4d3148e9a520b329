//! The four readiness checks the seeds ask for before customization (issue 20, `tenantry
//! readiness`): their verdicts and how they sum up. The checks themselves run in the application.

/// One check's verdict. A check that could not run is `Skipped`, which counts as a warning: a
/// platform is not ready on a check nobody ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Skipped,
    Warn,
    Fail,
}

impl Verdict {
    pub fn symbol(self) -> &'static str {
        match self {
            Verdict::Pass => "✓",
            Verdict::Skipped => "–",
            Verdict::Warn => "⚠",
            Verdict::Fail => "✗",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Skipped => "skipped",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }

    /// The process exit code of a summary with this verdict: 0 ready, 3 warnings, 1 a failure.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::Skipped | Verdict::Warn => 3,
            Verdict::Fail => 1,
        }
    }
}

/// One check and the sentence that explains its verdict.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// `rls`, `cost_reconciliation`, `capacity_monitoring`, `tenants_query`.
    pub name: &'static str,
    pub verdict: Verdict,
    pub reason: String,
}

impl Check {
    pub fn new(name: &'static str, verdict: Verdict, reason: impl Into<String>) -> Self {
        Self { name, verdict, reason: reason.into() }
    }
}

/// The worst verdict of the checks (no checks: skipped).
pub fn summary(checks: &[Check]) -> Verdict {
    checks.iter().map(|c| c.verdict).max().unwrap_or(Verdict::Skipped)
}

/// A shared index's state against its capacity: healthy below the alert point, warning from it,
/// critical when full.
pub fn index_state(used: u32, capacity: u32, alert_at: u32) -> Verdict {
    if used >= capacity {
        Verdict::Fail
    } else if used >= alert_at {
        Verdict::Warn
    } else {
        Verdict::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_the_worst_and_skipped_is_not_ready() {
        let c = |v| Check::new("x", v, "");
        assert_eq!(summary(&[c(Verdict::Pass), c(Verdict::Pass)]), Verdict::Pass);
        assert_eq!(summary(&[c(Verdict::Pass), c(Verdict::Skipped)]).exit_code(), 3);
        assert_eq!(summary(&[c(Verdict::Warn), c(Verdict::Fail), c(Verdict::Pass)]), Verdict::Fail);
        assert_eq!(summary(&[]), Verdict::Skipped);
        assert_eq!((Verdict::Pass.exit_code(), Verdict::Warn.exit_code(), Verdict::Fail.exit_code()), (0, 3, 1));
    }

    #[test]
    fn index_states_follow_the_alert_threshold() {
        let at = crate::CapacityPolicy::default().alert_at(100);
        assert_eq!(index_state(79, 100, at), Verdict::Pass);
        assert_eq!(index_state(80, 100, at), Verdict::Warn);
        assert_eq!(index_state(100, 100, at), Verdict::Fail);
    }
}
