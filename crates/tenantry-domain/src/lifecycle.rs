//! The tenant lifecycle state machine, exactly the seed's:
//! active ↔ suspended, active → migrating, migrating → active | suspended,
//! suspended → archived, archived → deleted (terminal).

use std::fmt;
use time::OffsetDateTime;

/// Where a tenant is in its life. Invariant: a tenant only ever moves along [`TenantStatus::allowed_targets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum TenantStatus {
    Active,
    Suspended,
    Migrating,
    Archived,
    Deleted,
}

impl TenantStatus {
    pub const ALL: [TenantStatus; 5] = [
        TenantStatus::Active,
        TenantStatus::Suspended,
        TenantStatus::Migrating,
        TenantStatus::Archived,
        TenantStatus::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
            TenantStatus::Migrating => "migrating",
            TenantStatus::Archived => "archived",
            TenantStatus::Deleted => "deleted",
        }
    }

    pub fn parse(value: &str) -> Result<Self, LifecycleError> {
        TenantStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| LifecycleError::UnknownStatus(value.chars().take(40).collect()))
    }

    /// The states this one may move to. Empty for the terminal `deleted`.
    pub fn allowed_targets(self) -> &'static [TenantStatus] {
        use TenantStatus::*;
        match self {
            Active => &[Suspended, Migrating],
            Suspended => &[Active, Archived],
            Migrating => &[Active, Suspended],
            Archived => &[Deleted],
            Deleted => &[],
        }
    }

    pub fn can_transition_to(self, target: TenantStatus) -> bool {
        self.allowed_targets().contains(&target)
    }
}

impl fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("status {0:?} is not valid: use active, suspended, migrating, archived or deleted")]
    UnknownStatus(String),
    #[error("{}", invalid_transition_message(*.from, *.to))]
    InvalidTransition { from: TenantStatus, to: TenantStatus },
    #[error("a transition needs a reason: say why (it is recorded with the actor)")]
    MissingReason,
    #[error("tenant is archived under retention until {}; it can be deleted from then on", crate::tenant::format_time(*.retention_until))]
    RetentionActive { retention_until: OffsetDateTime },
}

fn invalid_transition_message(from: TenantStatus, to: TenantStatus) -> String {
    let allowed: Vec<&str> = from.allowed_targets().iter().map(|s| s.as_str()).collect();
    if allowed.is_empty() {
        format!("cannot move a tenant from {from} to {to}: {from} is terminal")
    } else {
        format!("cannot move a tenant from {from} to {to}; from {from} it can go to: {}", allowed.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TenantStatus::*;

    #[test]
    fn transition_table_is_the_seeds() {
        let allowed = [
            (Active, Suspended),
            (Suspended, Active),
            (Active, Migrating),
            (Migrating, Active),
            (Migrating, Suspended),
            (Suspended, Archived),
            (Archived, Deleted),
        ];
        for from in TenantStatus::ALL {
            for to in TenantStatus::ALL {
                assert_eq!(from.can_transition_to(to), allowed.contains(&(from, to)), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn refusal_names_current_state_and_targets() {
        let msg = LifecycleError::InvalidTransition { from: Active, to: Deleted }.to_string();
        assert!(msg.contains("from active to deleted"), "{msg}");
        assert!(msg.contains("suspended, migrating"), "{msg}");
        let msg = LifecycleError::InvalidTransition { from: Deleted, to: Active }.to_string();
        assert!(msg.contains("terminal"), "{msg}");
    }
}
