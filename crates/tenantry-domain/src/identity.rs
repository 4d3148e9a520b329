//! Who may do what inside a tenant: users belong to tenants with one role each, and each role
//! grants a fixed set of permissions. Platform-wide operations (creating tenants, lifecycle moves,
//! tiers, limits and billing) belong to platform administrators and are not in any tenant role.

use std::fmt;

use time::OffsetDateTime;

use crate::ids::{TenantId, UserId};

/// A user's role in one tenant (seed 004: one person can be a Finance analyst and a Legal reviewer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Analyst,
    Reviewer,
    Admin,
}

/// What a tenant-scoped operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read the tenant record.
    ReadTenant,
    /// Evaluate feature flags for the tenant.
    EvaluateFlags,
    /// Report health signals (latency, error rate, ...).
    RecordHealth,
    /// Read the tenant's audit trail.
    ReadAudit,
    /// Change descriptive attributes: name, contacts, metadata (not tier, limits or billing).
    UpdateProfile,
    /// Set or remove tenant-level flag overrides.
    ManageTenantFlags,
    /// List, add and remove the tenant's members.
    ManageMembers,
    /// Query the tenant's documents and list them.
    QueryDocuments,
    /// Ingest and delete the tenant's documents.
    ManageDocuments,
    /// Read the tenant's costs and budget.
    ReadCosts,
    /// Change the tenant's answer configuration (model, top_k, rerank, prompt template).
    ManageConfig,
}

impl Permission {
    pub const ALL: [Permission; 11] = [
        Permission::ReadTenant,
        Permission::EvaluateFlags,
        Permission::RecordHealth,
        Permission::ReadAudit,
        Permission::UpdateProfile,
        Permission::ManageTenantFlags,
        Permission::ManageMembers,
        Permission::QueryDocuments,
        Permission::ManageDocuments,
        Permission::ReadCosts,
        Permission::ManageConfig,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadTenant => "read_tenant",
            Permission::EvaluateFlags => "evaluate_flags",
            Permission::RecordHealth => "record_health",
            Permission::ReadAudit => "read_audit",
            Permission::UpdateProfile => "update_profile",
            Permission::ManageTenantFlags => "manage_tenant_flags",
            Permission::ManageMembers => "manage_members",
            Permission::QueryDocuments => "query_documents",
            Permission::ManageDocuments => "manage_documents",
            Permission::ReadCosts => "read_costs",
            Permission::ManageConfig => "manage_config",
        }
    }
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Analyst, Role::Reviewer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Result<Self, crate::Invalid> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == value)
            .ok_or_else(|| format!("role {value:?} is not one of admin, analyst, reviewer, viewer").into())
    }

    /// The permission table. Viewers read and query; analysts also report health and ingest or
    /// delete documents; reviewers also read the audit trail and the costs; admins do everything a
    /// tenant may do for itself.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Reviewer => {
                matches!(permission, ReadTenant | EvaluateFlags | ReadAudit | QueryDocuments | ReadCosts)
            }
            Role::Analyst => {
                matches!(permission, ReadTenant | EvaluateFlags | RecordHealth | QueryDocuments | ManageDocuments)
            }
            Role::Viewer => matches!(permission, ReadTenant | EvaluateFlags | QueryDocuments),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person who can be given memberships and API keys.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub display_name: String,
    pub created_at: OffsetDateTime,
}

impl User {
    pub fn new(id: UserId, display_name: &str, now: OffsetDateTime) -> Result<Self, crate::Invalid> {
        let display_name = display_name.trim();
        if display_name.is_empty() || display_name.chars().count() > 200 {
            return Err(crate::Invalid::from("a user's display name must be 1 to 200 characters".to_owned()));
        }
        Ok(User { id, display_name: display_name.to_owned(), created_at: now })
    }
}

/// How long an invitation can be accepted.
pub const INVITATION_DAYS: i64 = 7;

/// An offer of membership made by a tenant's admin: it becomes a membership only when the user
/// accepts it (a platform administrator adds members directly). Recording one answers the same
/// whether or not the user exists, so a tenant admin cannot probe the platform's user ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Invitation {
    pub tenant: TenantId,
    pub user: UserId,
    pub role: Role,
    /// The actor id of whoever invited.
    pub invited_by: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl Invitation {
    pub fn new(tenant: TenantId, user: UserId, role: Role, invited_by: &str, now: OffsetDateTime) -> Self {
        let expires_at = now + time::Duration::days(INVITATION_DAYS);
        Self { tenant, user, role, invited_by: invited_by.to_owned(), created_at: now, expires_at }
    }
}

/// A user's role in one tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Membership {
    pub tenant: TenantId,
    pub user: UserId,
    pub role: Role,
    pub created_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_table() {
        use Permission::*;
        // (permission, viewer, analyst, reviewer, admin)
        let table = [
            (ReadTenant, true, true, true, true),
            (EvaluateFlags, true, true, true, true),
            (RecordHealth, false, true, false, true),
            (ReadAudit, false, false, true, true),
            (UpdateProfile, false, false, false, true),
            (ManageTenantFlags, false, false, false, true),
            (ManageMembers, false, false, false, true),
            (QueryDocuments, true, true, true, true),
            (ManageDocuments, false, true, false, true),
            (ReadCosts, false, false, true, true),
            (ManageConfig, false, false, false, true),
        ];
        assert_eq!(table.len(), Permission::ALL.len());
        for (p, viewer, analyst, reviewer, admin) in table {
            assert_eq!(Role::Viewer.allows(p), viewer, "viewer {p:?}");
            assert_eq!(Role::Analyst.allows(p), analyst, "analyst {p:?}");
            assert_eq!(Role::Reviewer.allows(p), reviewer, "reviewer {p:?}");
            assert_eq!(Role::Admin.allows(p), admin, "admin {p:?}");
        }
    }

    #[test]
    fn roles_round_trip_and_unknown_is_refused() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Ok(r));
        }
        assert!(Role::parse("owner").unwrap_err().reason().contains("admin, analyst"));
    }

    #[test]
    fn display_name_is_required() {
        let id = UserId::parse("alice").unwrap();
        assert!(User::new(id.clone(), "  ", OffsetDateTime::UNIX_EPOCH).is_err());
        assert_eq!(User::new(id, " Alice ", OffsetDateTime::UNIX_EPOCH).unwrap().display_name, "Alice");
    }
}
