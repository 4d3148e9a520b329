//! Where a tenant's vectors live: a namespace on a shared physical index (lower tiers) or a
//! dedicated index (top tier), and capacity management of the shared pool so that a signup never
//! fails on a full index (seed 002's "namespace exhaustion").
//!
//! Shared indexes are filled oldest first. When a placement brings a shared index to the alert
//! threshold (default 80% of its namespaces), an alert is raised and — unless another shared
//! index still has room below its threshold — a new shared index is provisioned ahead of need.

use crate::ids::{IndexName, TenantId};
use crate::tier::IsolationMode;

/// Pool policy. Invariants (checked by [`CapacityPolicy::new`]): `max_namespaces ≥ 1`,
/// `0 < alert_threshold ≤ 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapacityPolicy {
    max_namespaces: u32,
    alert_threshold: f64,
}

impl CapacityPolicy {
    pub fn new(max_namespaces: u32, alert_threshold: f64) -> Result<Self, crate::Invalid> {
        if max_namespaces == 0 {
            return Err(crate::Invalid::from("an index must hold at least one namespace".to_owned()));
        }
        if !(alert_threshold > 0.0 && alert_threshold <= 1.0) {
            return Err(crate::Invalid::from(format!(
                "the alert threshold must be a fraction in (0, 1], got {alert_threshold}"
            )));
        }
        Ok(Self { max_namespaces, alert_threshold })
    }

    pub fn max_namespaces(&self) -> u32 {
        self.max_namespaces
    }

    /// The namespace count at which an index is "near full": ⌈capacity × threshold⌉.
    pub fn alert_at(&self, capacity: u32) -> u32 {
        ((f64::from(capacity) * self.alert_threshold).ceil() as u32).clamp(1, capacity)
    }
}

impl Default for CapacityPolicy {
    /// 100 namespaces per shared index (the seed's Pinecone limit), alert at 80%.
    fn default() -> Self {
        Self { max_namespaces: 100, alert_threshold: 0.8 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    Shared,
    Dedicated,
}

/// A physical index and how many namespaces (tenants) it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhysicalIndex {
    pub name: IndexName,
    pub kind: IndexKind,
    pub capacity: u32,
    pub used: u32,
}

impl PhysicalIndex {
    pub fn has_room(&self) -> bool {
        self.used < self.capacity
    }
}

/// Where one tenant's vectors are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// The tenant's namespace (its id) on a shared index.
    Namespace { index: IndexName },
    /// An index of the tenant's own.
    Dedicated { index: IndexName },
}

impl Placement {
    pub fn index(&self) -> &IndexName {
        match self {
            Placement::Namespace { index } | Placement::Dedicated { index } => index,
        }
    }
}

/// A shared index reached its alert threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapacityAlert {
    pub index: IndexName,
    pub used: u32,
    pub capacity: u32,
}

/// What placing a tenant decides: its placement, the indexes to create (in order), and the
/// alerts to raise. Applying it is the caller's (one transaction with the tenant's placement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementPlan {
    pub placement: Placement,
    pub provision: Vec<PhysicalIndex>,
    pub alerts: Vec<CapacityAlert>,
}

/// Plans the placement of `tenant` with `isolation`, given the current `pool`.
pub fn place(
    tenant: &TenantId,
    isolation: IsolationMode,
    pool: &[PhysicalIndex],
    policy: CapacityPolicy,
) -> PlacementPlan {
    if isolation == IsolationMode::DedicatedIndex {
        let name = IndexName::parse(&format!("dedicated-{tenant}")).expect("a tenant id makes a valid index name");
        let index = PhysicalIndex { name: name.clone(), kind: IndexKind::Dedicated, capacity: 1, used: 1 };
        return PlacementPlan {
            placement: Placement::Dedicated { index: name },
            provision: vec![index],
            alerts: vec![],
        };
    }
    let mut shared: Vec<PhysicalIndex> = pool.iter().filter(|i| i.kind == IndexKind::Shared).cloned().collect();
    let mut provision = Vec::new();
    let mut next_number = shared.iter().filter_map(|i| shared_number(&i.name)).max().unwrap_or(0) + 1;
    let mut new_shared = |provision: &mut Vec<PhysicalIndex>| {
        let name = IndexName::parse(&format!("shared-{next_number}")).expect("a valid index name");
        next_number += 1;
        let index = PhysicalIndex { name, kind: IndexKind::Shared, capacity: policy.max_namespaces(), used: 0 };
        provision.push(index.clone());
        index
    };
    let target = match shared.iter().position(PhysicalIndex::has_room) {
        Some(i) => i,
        None => {
            shared.push(new_shared(&mut provision));
            shared.len() - 1
        }
    };
    shared[target].used += 1;
    let chosen = shared[target].clone();
    let mut alerts = Vec::new();
    if chosen.used == policy.alert_at(chosen.capacity) {
        alerts.push(CapacityAlert { index: chosen.name.clone(), used: chosen.used, capacity: chosen.capacity });
    }
    // keep one shared index with room below its threshold ready for the next signups
    let standby = shared.iter().any(|i| i.used < policy.alert_at(i.capacity));
    if !standby {
        new_shared(&mut provision);
    }
    PlacementPlan { placement: Placement::Namespace { index: chosen.name }, provision, alerts }
}

fn shared_number(name: &IndexName) -> Option<u32> {
    name.as_str().strip_prefix("shared-")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tid(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    /// Applies plans to a pool, as a store would.
    fn register(
        pool: &mut Vec<PhysicalIndex>,
        tenant: &str,
        isolation: IsolationMode,
        policy: CapacityPolicy,
    ) -> PlacementPlan {
        let plan = place(&tid(tenant), isolation, pool, policy);
        pool.extend(plan.provision.iter().filter(|p| p.kind == IndexKind::Shared).cloned());
        match &plan.placement {
            Placement::Namespace { index } => pool.iter_mut().find(|i| &i.name == index).unwrap().used += 1,
            Placement::Dedicated { .. } => pool.push(plan.provision[0].clone()),
        }
        plan
    }

    #[test]
    fn the_issue_scenario_capacity_ten() {
        let policy = CapacityPolicy::new(10, 0.8).unwrap();
        let mut pool = Vec::new();
        let mut alerts = Vec::new();
        let mut provisioned = Vec::new();
        for n in 1..=11 {
            let plan = register(&mut pool, &format!("t{n:02}"), IsolationMode::SharedNamespace, policy);
            alerts.extend(plan.alerts.iter().map(|a| (n, a.index.to_string())));
            provisioned.extend(plan.provision.iter().map(|p| (n, p.name.to_string())));
            let expected = if n <= 10 { "shared-1" } else { "shared-2" };
            assert_eq!(plan.placement, Placement::Namespace { index: IndexName::parse(expected).unwrap() }, "t{n}");
        }
        assert_eq!(alerts, [(8, "shared-1".to_owned())], "the 8th signup fires the alert, once");
        assert_eq!(provisioned, [(1, "shared-1".to_owned()), (8, "shared-2".to_owned())], "ahead of need");
        let plan = register(&mut pool, "finance", IsolationMode::DedicatedIndex, policy);
        assert_eq!(plan.placement, Placement::Dedicated { index: IndexName::parse("dedicated-finance").unwrap() });
        assert_eq!(plan.provision.len(), 1);
        assert!(plan.alerts.is_empty());
    }

    #[test]
    fn never_places_on_a_full_index_and_always_keeps_a_standby() {
        let policy = CapacityPolicy::new(3, 0.5).unwrap();
        let mut pool = Vec::new();
        for n in 0..50 {
            register(&mut pool, &format!("t{n:02}"), IsolationMode::SharedNamespace, policy);
            assert!(pool.iter().all(|i| i.used <= i.capacity));
            assert!(pool.iter().any(|i| i.used < policy.alert_at(i.capacity)), "a standby index exists");
        }
        let names: std::collections::BTreeSet<_> = pool.iter().map(|i| i.name.clone()).collect();
        assert_eq!(names.len(), pool.len(), "index names are unique");
    }

    #[test]
    fn refuses_bad_policies() {
        assert!(CapacityPolicy::new(0, 0.8).is_err());
        assert!(CapacityPolicy::new(10, 0.0).is_err());
        assert!(CapacityPolicy::new(10, 1.5).is_err());
        assert_eq!(CapacityPolicy::new(10, 1.0).unwrap().alert_at(10), 10);
        assert_eq!(CapacityPolicy::default().alert_at(100), 80);
    }
}
