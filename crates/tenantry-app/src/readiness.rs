//! `tenantry readiness` (issue 20, item 5): the seeds' four checks before customization, run
//! against the live platform.
//! 1. Isolation: the database's RLS probes (PostgreSQL), and on every store a scoped
//!    cross-tenant probe — one tenant's scope asks for another tenant's document and chunks.
//! 2. Cost reconciliation: the latest closed month's recorded reconciliation.
//! 3. Capacity monitoring: every shared index's namespaces against its capacity and alert point,
//!    and where capacity alerts go.
//! 4. At least three tenants that can create, upload and query: a real scoped search per tenant
//!    for its own document (straight to the store: readiness is not billed to tenants).

use std::sync::Arc;

use tenantry_domain::pricing::Month;
use tenantry_domain::readiness::{Check, Verdict, index_state};
use tenantry_domain::{IndexKind, TenantStatus};

use crate::access::{PlatformScope, TenantScope};
use crate::costs::Costs;
use crate::dataplane::DataPlane;
use crate::error::AppError;
use crate::ports::{Clock, Store, StoredDocument, TenantFilter};

/// How many tenants check 4 asks for.
pub const TENANTS_NEEDED: usize = 3;

/// The readiness checks. Cheap to clone.
#[derive(Clone)]
pub struct Readiness {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    data: DataPlane,
    costs: Costs,
}

/// A tenant with a document, as the probes use it.
struct Probed {
    scope: TenantScope,
    document: StoredDocument,
}

impl Readiness {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, data: DataPlane, costs: Costs) -> Self {
        Self { store, clock, data, costs }
    }

    /// Runs the four checks.
    pub async fn run(&self, access: &PlatformScope) -> Result<Vec<Check>, AppError> {
        let probed = self.tenants_with_documents(access).await?;
        Ok(vec![
            self.isolation(&probed).await?,
            self.reconciliation(access).await?,
            self.capacity(access).await?,
            self.tenants_query(&probed).await?,
        ])
    }

    /// Up to [`TENANTS_NEEDED`] active tenants with a document (oldest tenants first).
    async fn tenants_with_documents(&self, access: &PlatformScope) -> Result<Vec<Probed>, AppError> {
        let mut found = Vec::new();
        let mut filter = TenantFilter { status: Some(TenantStatus::Active), limit: 500, ..TenantFilter::default() };
        loop {
            let page = self.store.list_tenants(access, &filter).await?;
            for t in &page {
                let scope = access.act_in(t.id.clone());
                if let Some(document) = self.store.list_documents(&scope, None, 1).await?.pop() {
                    found.push(Probed { scope, document });
                    if found.len() == TENANTS_NEEDED {
                        return Ok(found);
                    }
                }
            }
            if page.len() < filter.limit as usize {
                return Ok(found);
            }
            filter.after = page.last().map(|t| t.id.clone());
        }
    }

    async fn isolation(&self, probed: &[Probed]) -> Result<Check, AppError> {
        const NAME: &str = "rls";
        // the scoped probe: tenant A's scope asks for B's document and searches B's index
        let scoped = match probed {
            [a, b, ..] => {
                let read = self.store.get_document(&a.scope, &b.document.id).await?;
                let placement = self.store.tenant_placement(&b.scope).await?;
                let leaked = match placement {
                    Some(p) => {
                        let vector = self.embed(&b.document.title).await?;
                        let hits = self.store.search(&a.scope, &p, &vector, 10, &Default::default()).await?;
                        hits.iter().any(|h| h.document_id == b.document.id)
                    }
                    None => false,
                };
                if read.is_some() || leaked {
                    return Ok(Check::new(
                        NAME,
                        Verdict::Fail,
                        format!(
                            "tenant {}'s scope reached tenant {}'s document {}",
                            a.scope.tenant(),
                            b.scope.tenant(),
                            b.document.id
                        ),
                    ));
                }
                Some(format!("tenant {}'s scope saw none of tenant {}'s data", a.scope.tenant(), b.scope.tenant()))
            }
            _ => None,
        };
        let probes = self.store.isolation_probes().await?;
        if let Some(failed) = probes.iter().find(|p| p.passed == Some(false)) {
            return Ok(Check::new(NAME, Verdict::Fail, format!("RLS probe {} failed: {}", failed.name, failed.detail)));
        }
        let ran = probes.iter().filter(|p| p.passed == Some(true)).count();
        let scoped_note =
            scoped.clone().unwrap_or_else(|| "no two tenants with documents for the scoped probe".to_owned());
        Ok(match (self.store.backend(), ran, scoped) {
            ("postgres", n, Some(_)) if n > 0 && n == probes.len() => {
                Check::new(NAME, Verdict::Pass, format!("{n} RLS probes passed as the application role; {scoped_note}"))
            }
            ("postgres", n, _) => Check::new(
                NAME,
                Verdict::Skipped,
                format!("{n} of {} RLS probes could run; {scoped_note}", probes.len()),
            ),
            (_, _, _) => Check::new(
                NAME,
                Verdict::Warn,
                format!(
                    "the {} store has application-level isolation only (no database RLS); {scoped_note}",
                    self.store.backend()
                ),
            ),
        })
    }

    async fn reconciliation(&self, access: &PlatformScope) -> Result<Check, AppError> {
        const NAME: &str = "cost_reconciliation";
        let this = Month::of(self.clock.now().date());
        let closed = Month::parse(&previous(this)).map_err(AppError::from)?;
        match self.costs.latest_reconciliation(access, Some(closed)).await? {
            Some(r) => {
                let verdict = match r.verdict.as_str() {
                    "pass" => Verdict::Pass,
                    "warn" => Verdict::Warn,
                    _ => Verdict::Fail,
                };
                let variance =
                    r.detail["variance_percent"].as_str().map(str::to_owned).unwrap_or_else(|| "-".to_owned());
                Ok(Check::new(
                    NAME,
                    verdict,
                    format!("{closed}: allocated vs billed {variance}% ({}), reconciled {}", r.verdict, r.at.date()),
                ))
            }
            None if self.store.bills(access, closed).await?.is_empty() => Ok(Check::new(
                NAME,
                Verdict::Skipped,
                format!(
                    "no bills imported for {closed}: `tenantry cost bills import`, then `tenantry cost reconcile --month {closed}`"
                ),
            )),
            None => Ok(Check::new(
                NAME,
                Verdict::Warn,
                format!(
                    "bills for {closed} are imported but the month is not reconciled: `tenantry cost reconcile --month {closed}`"
                ),
            )),
        }
    }

    async fn capacity(&self, access: &PlatformScope) -> Result<Check, AppError> {
        const NAME: &str = "capacity_monitoring";
        let policy = self.data.capacity_policy();
        let pool = self.store.index_pool(access).await?;
        let shared: Vec<_> = pool.iter().filter(|u| u.index.kind == IndexKind::Shared).collect();
        let mut worst = Verdict::Pass;
        let mut parts = Vec::new();
        for u in &shared {
            let (used, capacity) = (u.index.used, u.index.capacity);
            let state = index_state(used, capacity, policy.alert_at(capacity));
            worst = worst.max(state);
            let word = match state {
                Verdict::Pass => "healthy",
                Verdict::Warn => "warning",
                _ => "critical",
            };
            parts.push(format!("{} {used}/{capacity} {word}", u.index.name));
        }
        let indexes = if parts.is_empty() { "no shared index yet".to_owned() } else { parts.join(", ") };
        let alert_at = policy.alert_at(policy.max_namespaces());
        Ok(Check::new(
            NAME,
            worst,
            format!(
                "{indexes}; alerts fire at {alert_at} of {} namespaces and go to {}",
                policy.max_namespaces(),
                self.data.alert_destination()
            ),
        ))
    }

    async fn tenants_query(&self, probed: &[Probed]) -> Result<Check, AppError> {
        const NAME: &str = "tenants_query";
        let mut ok = Vec::new();
        for p in probed {
            let Some(placement) = self.store.tenant_placement(&p.scope).await? else { continue };
            let vector = self.embed(&p.document.title).await?;
            let hits = self.store.search(&p.scope, &placement, &vector, 5, &Default::default()).await?;
            if hits.iter().any(|h| h.document_id == p.document.id) {
                ok.push(p.scope.tenant().to_string());
            }
        }
        Ok(if ok.len() >= TENANTS_NEEDED {
            Check::new(NAME, Verdict::Pass, format!("{} tenants found their own document: {}", ok.len(), ok.join(", ")))
        } else {
            Check::new(
                NAME,
                Verdict::Fail,
                format!(
                    "{} of the {TENANTS_NEEDED} tenants needed can upload and query{}",
                    ok.len(),
                    if ok.is_empty() { String::new() } else { format!(" ({})", ok.join(", ")) }
                ),
            )
        })
    }

    async fn embed(&self, text: &str) -> Result<Vec<f32>, AppError> {
        let mut e = self.data.embedder().embed(&[text]).await.map_err(AppError::EmbeddingUnavailable)?;
        e.pop().map(|e| e.vector).ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("the embedder returned nothing")))
    }
}

/// The month before `month`, as `YYYY-MM`.
fn previous(month: Month) -> String {
    let first = month.first_day();
    let last_of_previous = first.previous_day().expect("a month has a day before it");
    Month::of(last_of_previous).to_string()
}
