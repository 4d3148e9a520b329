//! The audit log's vocabulary: every operation an entry can record, as one enum. An entry's
//! `operation` is stored as text (the hash chain covers that text), but it is only ever written
//! from an [`AuditOp`], so the list below is complete and a mistyped name cannot compile.
//!
//! | operation | written when |
//! |---|---|
//! | `tier.create` | a tier is added to the catalog |
//! | `tenant.create`, `tenant.update`, `tenant.health` | a tenant is registered, changed, scored |
//! | `tenant.place` | a tenant is placed on the vector index pool |
//! | `tenant.transition.<status>` | a tenant moves along its lifecycle |
//! | `flag.set`, `flag.delete` | a flag value is set or removed at a scope |
//! | `flag.enable`, `flag.disable` | the kill switch |
//! | `user.create`, `member.put`, `member.remove` | users and memberships change |
//! | `member.invite`, `member.accept` | a tenant admin invites a user; the user accepts |
//! | `key.create`, `key.revoke` | API keys are issued or revoked (never the token) |
//! | `document.ingest`, `document.delete` | documents enter or leave a tenant's data |
//! | `cost.price`, `cost.fixed.put`, `cost.fixed.delete`, `cost.bills`, `cost.reconcile` | the price book, fixed costs and bills change; a month is reconciled |
//! | `cost.read` | a tenant's costs are read in its scope |
//! | `config.set`, `config.rollback` | a tenant's, a tier's or the platform's answer configuration gets a new version |
//! | `answer.ask` | a tenant's question is answered (question digest, cited documents, model, usage, config version) |
//! | `tenant.read`, `flag.evaluate`, `flag.evaluate_all`, `member.read`, `audit.read` | a principal reads in a tenant's scope |
//! | `platform.read.<what>` | a principal reads platform-wide (`tenants`, `statistics`, `flags`, `flag_definitions`, `stale_flags`, `user`, `users`, `memberships`, `keys`, `audit`, `audit_verify`, `costs`, `prices`, `fixed_costs`) |

use tenantry_domain::TenantStatus;

/// One operation of the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditOp {
    TierCreate,
    TenantCreate,
    TenantRead,
    TenantUpdate,
    TenantHealth,
    TenantPlace,
    TenantTransition(TenantStatus),
    FlagSet,
    FlagDelete,
    FlagEnable,
    FlagDisable,
    FlagEvaluate,
    FlagEvaluateAll,
    UserCreate,
    MemberPut,
    MemberRemove,
    MemberInvite,
    MemberAccept,
    MemberRead,
    KeyCreate,
    KeyRevoke,
    DocumentIngest,
    DocumentDelete,
    AuditRead,
    CostPrice,
    CostFixedPut,
    CostFixedDelete,
    CostBills,
    CostReconcile,
    CostRead,
    ConfigSet,
    ConfigRollback,
    AnswerAsk,
    PlatformRead(PlatformRead),
}

/// What a platform-wide read read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlatformRead {
    Tenants,
    Statistics,
    Flags,
    FlagDefinitions,
    StaleFlags,
    User,
    Users,
    Memberships,
    Keys,
    Audit,
    AuditVerify,
    Costs,
    Prices,
    FixedCosts,
}

impl AuditOp {
    /// Every operation, in the order of the module's table.
    pub fn all() -> Vec<AuditOp> {
        use AuditOp::*;
        let mut all = vec![TierCreate, TenantCreate, TenantUpdate, TenantHealth, TenantPlace];
        all.extend(TenantStatus::ALL.map(TenantTransition));
        all.extend([
            FlagSet,
            FlagDelete,
            FlagEnable,
            FlagDisable,
            UserCreate,
            MemberPut,
            MemberRemove,
            MemberInvite,
            MemberAccept,
            KeyCreate,
            KeyRevoke,
            DocumentIngest,
            DocumentDelete,
            TenantRead,
            FlagEvaluate,
            FlagEvaluateAll,
            MemberRead,
            AuditRead,
            CostPrice,
            CostFixedPut,
            CostFixedDelete,
            CostBills,
            CostReconcile,
            CostRead,
            ConfigSet,
            ConfigRollback,
            AnswerAsk,
        ]);
        use self::PlatformRead as P;
        all.extend(
            [
                P::Tenants,
                P::Statistics,
                P::Flags,
                P::FlagDefinitions,
                P::StaleFlags,
                P::User,
                P::Users,
                P::Memberships,
                P::Keys,
                P::Audit,
                P::AuditVerify,
                P::Costs,
                P::Prices,
                P::FixedCosts,
            ]
            .map(PlatformRead),
        );
        all
    }

    /// The name stored in the entry; never changes once released (entries are hashed with it).
    pub const fn as_str(self) -> &'static str {
        use AuditOp::*;
        match self {
            TierCreate => "tier.create",
            TenantCreate => "tenant.create",
            TenantRead => "tenant.read",
            TenantUpdate => "tenant.update",
            TenantHealth => "tenant.health",
            TenantPlace => "tenant.place",
            TenantTransition(TenantStatus::Active) => "tenant.transition.active",
            TenantTransition(TenantStatus::Suspended) => "tenant.transition.suspended",
            TenantTransition(TenantStatus::Migrating) => "tenant.transition.migrating",
            TenantTransition(TenantStatus::Archived) => "tenant.transition.archived",
            TenantTransition(TenantStatus::Deleted) => "tenant.transition.deleted",
            FlagSet => "flag.set",
            FlagDelete => "flag.delete",
            FlagEnable => "flag.enable",
            FlagDisable => "flag.disable",
            FlagEvaluate => "flag.evaluate",
            FlagEvaluateAll => "flag.evaluate_all",
            UserCreate => "user.create",
            MemberPut => "member.put",
            MemberRemove => "member.remove",
            MemberInvite => "member.invite",
            MemberAccept => "member.accept",
            MemberRead => "member.read",
            KeyCreate => "key.create",
            KeyRevoke => "key.revoke",
            DocumentIngest => "document.ingest",
            DocumentDelete => "document.delete",
            AuditRead => "audit.read",
            CostPrice => "cost.price",
            CostFixedPut => "cost.fixed.put",
            CostFixedDelete => "cost.fixed.delete",
            CostBills => "cost.bills",
            CostReconcile => "cost.reconcile",
            CostRead => "cost.read",
            ConfigSet => "config.set",
            ConfigRollback => "config.rollback",
            AnswerAsk => "answer.ask",
            PlatformRead(read) => match read {
                self::PlatformRead::Tenants => "platform.read.tenants",
                self::PlatformRead::Statistics => "platform.read.statistics",
                self::PlatformRead::Flags => "platform.read.flags",
                self::PlatformRead::FlagDefinitions => "platform.read.flag_definitions",
                self::PlatformRead::StaleFlags => "platform.read.stale_flags",
                self::PlatformRead::User => "platform.read.user",
                self::PlatformRead::Users => "platform.read.users",
                self::PlatformRead::Memberships => "platform.read.memberships",
                self::PlatformRead::Keys => "platform.read.keys",
                self::PlatformRead::Audit => "platform.read.audit",
                self::PlatformRead::AuditVerify => "platform.read.audit_verify",
                self::PlatformRead::Costs => "platform.read.costs",
                self::PlatformRead::Prices => "platform.read.prices",
                self::PlatformRead::FixedCosts => "platform.read.fixed_costs",
            },
        }
    }

    /// The operation stored under `name`, if it is one of the list.
    pub fn parse(name: &str) -> Option<AuditOp> {
        AuditOp::all().into_iter().find(|op| op.as_str() == name)
    }
}

impl std::fmt::Display for AuditOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_one_distinct_name_that_parses_back() {
        let all = AuditOp::all();
        let mut names: Vec<&str> = all.iter().map(|op| op.as_str()).collect();
        for op in &all {
            assert_eq!(AuditOp::parse(op.as_str()), Some(*op));
            assert!(op.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_'), "{op}");
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "a name is used twice");
        assert_eq!(AuditOp::parse("tenant.explode"), None);
    }

    #[test]
    fn the_module_table_names_every_operation() {
        let doc = include_str!("operations.rs");
        let table: String = doc.lines().take_while(|l| l.starts_with("//!")).collect::<Vec<_>>().join("\n");
        for op in AuditOp::all() {
            let name = op.as_str();
            let listed = table.contains(&format!("`{name}`"))
                || name
                    .strip_prefix("tenant.transition.")
                    .is_some_and(|_| table.contains("`tenant.transition.<status>`"))
                || name.strip_prefix("platform.read.").is_some_and(|what| table.contains(&format!("`{what}`")));
            assert!(listed, "{name} is not in the documented list");
        }
    }
}
