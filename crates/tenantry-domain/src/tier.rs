//! The tier catalog: tiers are data (name, rank, default limits, isolation mode, retention), so an
//! operator can add `free`/`pro`/`enterprise` without a deploy.

use crate::ids::{Label, TierName};
use crate::tenant::Limits;

const MIB: i64 = 1024 * 1024;

/// How a tier's tenants are placed in the vector store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IsolationMode {
    /// A namespace on a shared physical index.
    SharedNamespace,
    /// A physical index of the tenant's own.
    DedicatedIndex,
}

impl IsolationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            IsolationMode::SharedNamespace => "shared_namespace",
            IsolationMode::DedicatedIndex => "dedicated_index",
        }
    }

    pub fn parse(value: &str) -> Result<Self, TierError> {
        match value {
            "shared_namespace" => Ok(IsolationMode::SharedNamespace),
            "dedicated_index" => Ok(IsolationMode::DedicatedIndex),
            other => Err(TierError::Invalid(format!(
                "isolation mode {other:?} is not valid: use shared_namespace or dedicated_index"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TierError {
    #[error("{0}")]
    Invalid(String),
}

/// One tier of the catalog. Invariants: `default_limits` are valid limits; `retention_days` is how
/// long an archived tenant's data must be kept before deletion is allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    pub name: TierName,
    /// Ordering for upgrades/downgrades and display: higher is more premium.
    pub rank: i32,
    pub description: String,
    pub default_limits: Limits,
    pub isolation: IsolationMode,
    pub retention_days: u32,
}

impl Tier {
    pub fn new(
        name: TierName,
        rank: i32,
        description: impl Into<String>,
        default_limits: Limits,
        isolation: IsolationMode,
        retention_days: u32,
    ) -> Result<Self, TierError> {
        default_limits.validate().map_err(|e| TierError::Invalid(e.to_string()))?;
        if retention_days > crate::timestamp::MAX_DAYS {
            return Err(TierError::Invalid("retention_days must be at most 36500 (100 years)".to_owned()));
        }
        Ok(Self { name, rank, description: description.into(), default_limits, isolation, retention_days })
    }

    /// The catalog every new store starts with: bronze, silver, gold, platinum (platinum dedicated).
    pub fn builtin_catalog() -> Vec<Tier> {
        let tier = |name: &str, rank, description: &str, limits: Limits, isolation, retention_days| Tier {
            name: TierName::parse(name).expect("built-in tier names are valid"),
            rank,
            description: description.to_owned(),
            default_limits: limits,
            isolation,
            retention_days,
        };
        let support = |s: &str| Label::parse(s).expect("built-in support levels are valid");
        vec![
            tier(
                "bronze",
                10,
                "Entry tier: shared namespace, business-hours support",
                Limits {
                    max_users: 10,
                    max_documents: 1_000,
                    max_queries_per_day: 500,
                    max_storage_gb: 1,
                    rate_limit_per_minute: 30,
                    sla_target: 0.99,
                    support_level: support("email"),
                    ingest_documents_per_second: 5,
                    ingest_bytes_per_second: MIB,
                },
                IsolationMode::SharedNamespace,
                30,
            ),
            tier(
                "silver",
                20,
                "Shared namespace with standard limits",
                Limits {
                    max_users: 50,
                    max_documents: 10_000,
                    max_queries_per_day: 2_000,
                    max_storage_gb: 10,
                    rate_limit_per_minute: 60,
                    sla_target: 0.995,
                    support_level: support("business_hours"),
                    ingest_documents_per_second: 20,
                    ingest_bytes_per_second: 4 * MIB,
                },
                IsolationMode::SharedNamespace,
                90,
            ),
            tier(
                "gold",
                30,
                "Shared namespace with premium limits",
                Limits {
                    max_users: 200,
                    max_documents: 50_000,
                    max_queries_per_day: 10_000,
                    max_storage_gb: 100,
                    rate_limit_per_minute: 300,
                    sla_target: 0.999,
                    support_level: support("extended_hours"),
                    ingest_documents_per_second: 50,
                    ingest_bytes_per_second: 16 * MIB,
                },
                IsolationMode::SharedNamespace,
                180,
            ),
            tier(
                "platinum",
                40,
                "Dedicated index, 24/7 support",
                Limits {
                    max_users: 1_000,
                    max_documents: 500_000,
                    max_queries_per_day: 100_000,
                    max_storage_gb: 1_000,
                    rate_limit_per_minute: 1_200,
                    sla_target: 0.9999,
                    support_level: support("24/7"),
                    ingest_documents_per_second: 200,
                    ingest_bytes_per_second: 64 * MIB,
                },
                IsolationMode::DedicatedIndex,
                365,
            ),
        ]
    }
}
