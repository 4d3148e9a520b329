//! In-process flag evaluation (the hot path once flags live in a snapshot):
//! one flag, and every flag of a tenant when 500 flags are defined.
//!
//! `cargo bench -p tenantry-domain --bench flag_eval`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tenantry_domain::flags::FlagRule;
use tenantry_domain::{FlagKey, FlagScope, FlagSet, FlagValue, TenantId, TierName};

/// 500 flags: every one global; a third with tier values for each of 4 tiers; a tenth with a
/// rollout; overrides for 1,000 tenants on a few flags each.
fn catalog() -> FlagSet {
    let mut f = FlagSet::new();
    let tiers = ["bronze", "silver", "gold", "platinum"].map(|t| TierName::parse(t).unwrap());
    for i in 0..500 {
        let key = FlagKey::parse(&format!("feature.flag_{i:03}")).unwrap();
        f.set(FlagScope::Global, key.clone(), FlagValue::Bool(false));
        if i % 3 == 0 {
            for t in &tiers {
                let rollout = (i % 10 == 0).then_some(50);
                f.set_rule(FlagScope::Tier(t.clone()), key.clone(), FlagRule { value: FlagValue::Bool(true), rollout });
            }
        }
        f.set_version(key, i64::from(i as u32) + 1);
    }
    for t in 0..1000 {
        let tenant = TenantId::parse(&format!("tenant-{t:04}")).unwrap();
        for j in 0..3 {
            let key = FlagKey::parse(&format!("feature.flag_{:03}", (t * 7 + j * 13) % 500)).unwrap();
            f.set(FlagScope::Tenant(tenant.clone()), key, FlagValue::String("custom".into()));
        }
    }
    f
}

fn bench(c: &mut Criterion) {
    let flags = catalog();
    let tenant = TenantId::parse("tenant-0042").unwrap();
    let tier = TierName::parse("gold").unwrap();
    let tier_hit = FlagKey::parse("feature.flag_003").unwrap();
    let rollout = FlagKey::parse("feature.flag_030").unwrap();
    let global_only = FlagKey::parse("feature.flag_001").unwrap();
    c.bench_function("evaluate one flag (tier value)", |b| {
        b.iter(|| flags.evaluate(black_box(&tier_hit), black_box(&tenant), black_box(&tier)))
    });
    c.bench_function("evaluate one flag (50% rollout)", |b| {
        b.iter(|| flags.evaluate(black_box(&rollout), black_box(&tenant), black_box(&tier)))
    });
    c.bench_function("evaluate one flag (global fallback)", |b| {
        b.iter(|| flags.evaluate(black_box(&global_only), black_box(&tenant), black_box(&tier)))
    });
    c.bench_function("evaluate all 500 flags of a tenant", |b| {
        b.iter(|| flags.evaluate_all(black_box(&tenant), black_box(&tier)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
