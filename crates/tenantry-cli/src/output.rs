//! What the CLI prints: readable tables for people, JSON (the seed's field names) with `--json`.
//! Wire shapes live here, at the edge; domain types know nothing of them.

use serde_json::{Value, json};

use tenantry_app::ports::{FlagRow, Page, Statistics};
use tenantry_domain::tenant::format_time;
use tenantry_domain::{Evaluation, FlagKey, FlagScope, FlagValue, HealthReport, LimitField, Tenant, TenantId, Tier};
use tenantry_store_postgres::probes::Probe;

use tenantry_app::{ApiKey, AppError, Checkpoint, IssuedKey, VerifyReport};
use tenantry_domain::FlagDefinition;
use tenantry_domain::flags::StaleReason;
use tenantry_domain::{Membership, User};
use tenantry_http::dto::{
    AuditEntryView, EvaluationView, FlagDefinitionView, HealthView, KeyView, MembershipView, StaleFlagView,
    StatisticsView, TenantView, UserView,
};

use crate::commands::CliError;

pub struct Out {
    pub json: bool,
}

pub fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()));
}

/// Prints rows under headers with columns padded to the widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_uppercase()).collect());
    for row in rows {
        line(row.clone());
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(|x| x.to_string()).unwrap_or_else(|| "-".to_owned())
}

/// A tenant in the seed's JSON field names (`tenant_name`, `max_users`, …) plus the rest.
/// The wire shape of a tenant: the HTTP API's, so the CLI's `--json` and the API agree.
pub fn tenant_json(t: &Tenant) -> Value {
    to_json(&TenantView::from(t))
}

fn evaluation_json(tenant: &TenantId, key: &FlagKey, e: &Evaluation) -> Value {
    to_json(&EvaluationView::new(tenant, key, e))
}

fn to_json(view: &impl serde::Serialize) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}

impl Out {
    pub fn issued_key(&self, issued: &IssuedKey) {
        let view = KeyView::from(&issued.key);
        if self.json {
            return print_json(&json!({ "token": issued.token, "key": view }));
        }
        println!("{}", issued.token);
        eprintln!(
            "API key {} for {} {} — shown once: store it now; only its hash is kept",
            view.key_id, view.owner_kind, view.owner_id
        );
    }

    pub fn keys(&self, keys: &[ApiKey]) {
        let views: Vec<KeyView> = keys.iter().map(KeyView::from).collect();
        if self.json {
            return print_json(&json!(views));
        }
        let rows: Vec<Vec<String>> = views
            .iter()
            .map(|k| {
                vec![
                    k.key_id.clone(),
                    k.owner_kind.clone(),
                    k.owner_id.clone(),
                    k.name.clone(),
                    k.created_at.clone(),
                    opt(&k.expires_at),
                    opt(&k.revoked_at),
                ]
            })
            .collect();
        table(&["key_id", "owner_kind", "owner", "name", "created", "expires", "revoked"], &rows);
    }

    pub fn users(&self, users: &[User]) {
        let views: Vec<UserView> = users.iter().map(UserView::from).collect();
        if self.json {
            return print_json(&json!(views));
        }
        let rows: Vec<Vec<String>> =
            views.iter().map(|u| vec![u.user_id.clone(), u.display_name.clone(), u.created_at.clone()]).collect();
        table(&["user_id", "display_name", "created"], &rows);
    }

    pub fn memberships(&self, memberships: &[Membership]) {
        let views: Vec<MembershipView> = memberships.iter().map(MembershipView::from).collect();
        if self.json {
            return print_json(&json!(views));
        }
        let rows: Vec<Vec<String>> =
            views.iter().map(|m| vec![m.tenant_id.clone(), m.user_id.clone(), m.role.clone()]).collect();
        table(&["tenant_id", "user_id", "role"], &rows);
    }

    pub fn public_key(&self, key_id: &str, public_hex: &str) {
        if self.json {
            return print_json(&json!({"key_id": key_id, "public_key": public_hex, "algorithm": "ed25519"}));
        }
        println!("{public_hex}");
        eprintln!(
            "Ed25519 public key, key id {key_id}: give it to whoever verifies exports (`audit verify --public-key`)"
        );
    }

    /// One JSON object per line, whatever `--json` says (the export format).
    pub fn json_line(&self, v: &Value) {
        println!("{v}");
    }

    pub fn checkpoint(&self, cp: &Checkpoint) {
        let v = json!({
            "seq": cp.seq, "head_hash": cp.head_hash, "at": format_time(cp.at), "key_id": cp.key_id,
            "signature": cp.signature,
        });
        if self.json {
            return print_json(&v);
        }
        println!("signed the audit chain head at entry {} ({}) with key {}", cp.seq, cp.head_hash, cp.key_id);
    }

    pub fn verify_report(&self, r: &VerifyReport) {
        if self.json {
            return print_json(&json!({
                "ok": r.fault.is_none(), "verified_entries": r.verified, "legacy_entries": r.legacy,
                "signatures_checked": r.signatures_checked, "checkpoints_checked": r.checkpoints_checked,
                "head_seq": r.head.as_ref().map(|h| h.0), "head_hash": r.head.as_ref().map(|h| h.1.clone()),
                "fault": r.fault.as_ref().map(|f| json!({"seq": f.seq(), "kind": f.kind(), "detail": f.to_string()})),
            }));
        }
        let head = r.head.as_ref().map(|(seq, hash)| format!("entry {seq} ({hash})")).unwrap_or_else(|| "empty".into());
        match &r.fault {
            None => println!(
                "audit log intact: {} entries verified{}, {} checkpoints, signatures {}; head {head}",
                r.verified,
                if r.legacy > 0 {
                    format!(" ({} older unsealed entries before the chain)", r.legacy)
                } else {
                    String::new()
                },
                r.checkpoints_checked,
                if r.signatures_checked { "checked" } else { "NOT checked (no trusted public key)" },
            ),
            Some(f) => println!("audit log BROKEN at entry {} ({}): {f}", f.seq(), f.kind()),
        }
    }

    pub fn message(&self, msg: &str) {
        if self.json {
            print_json(&json!({ "message": msg }));
        } else {
            println!("{msg}");
        }
    }

    pub fn tenant(&self, t: &Tenant) {
        if self.json {
            return print_json(&tenant_json(t));
        }
        let budget = t.monthly_budget.as_ref().map(|m| m.to_string());
        let tags: Vec<&str> = t.compliance_tags.iter().map(|l| l.as_str()).collect();
        let rows = [
            ("tenant_id", t.id.to_string()),
            ("name", t.name.clone()),
            ("tier", t.tier.to_string()),
            ("status", format!("{} ({})", t.status, opt(&t.status_reason))),
            ("status_changed_at", format_time(t.status_changed_at)),
            ("retention_until", opt(&t.retention_until.map(format_time))),
            ("billing_email", opt(&t.billing_email)),
            ("owner", opt(&t.owner)),
        ];
        let limits = t.limits.entries().map(|(field, value)| (field.as_str(), value.to_string()));
        let explicit: Vec<&str> = t.limit_overrides.explicit_fields().into_iter().map(|f| f.as_str()).collect();
        let rest = [
            ("explicit_limits", explicit.join(", ")),
            ("cost_center", opt(&t.cost_center)),
            ("monthly_budget", opt(&budget)),
            ("budget_action", t.budget_action.as_str().to_owned()),
            ("health_score", opt(&t.health_score)),
            ("compliance_tags", if tags.is_empty() { "-".to_owned() } else { tags.join(", ") }),
            ("data_region", t.data_region.to_string()),
            ("metadata", t.metadata.to_string()),
            ("version", t.version.to_string()),
            ("created_at", format_time(t.created_at)),
            ("updated_at", format_time(t.updated_at)),
        ];
        let rows: Vec<(&str, String)> = rows.into_iter().chain(limits).chain(rest).collect();
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in rows {
            println!("{k:<width$}  {v}");
        }
    }

    pub fn tenant_page(&self, page: &Page<Tenant>) {
        if self.json {
            return print_json(&json!({
                "tenants": page.items.iter().map(tenant_json).collect::<Vec<_>>(),
                "next_cursor": page.next_cursor,
            }));
        }
        let rows: Vec<Vec<String>> = page
            .items
            .iter()
            .map(|t| {
                vec![
                    t.id.to_string(),
                    t.name.clone(),
                    t.tier.to_string(),
                    t.status.to_string(),
                    t.limits.max_users.to_string(),
                    t.limits.max_queries_per_day.to_string(),
                    opt(&t.health_score),
                ]
            })
            .collect();
        table(&["tenant_id", "name", "tier", "status", "max_users", "queries/day", "health"], &rows);
        if let Some(c) = &page.next_cursor {
            println!("(more: --after {c})");
        }
    }

    pub fn health(&self, t: &Tenant, r: &HealthReport) {
        if self.json {
            return print_json(&to_json(&HealthView::new(t, r)));
        }
        println!("{}: health score {} ({})", t.id, r.score, r.class);
        println!(
            "  penalties: latency {:.2}, error rate {:.2}, query success {:.2}, storage {:.2}",
            r.latency_penalty, r.error_penalty, r.success_penalty, r.storage_penalty
        );
    }

    pub fn statistics(&self, s: &Statistics) {
        if self.json {
            return print_json(&to_json(&StatisticsView::from(s)));
        }
        println!("total tenants: {}", s.total);
        for (title, v) in [("by status", &s.by_status), ("by tier", &s.by_tier), ("by health", &s.by_health)] {
            let parts: Vec<String> = v.iter().map(|(k, n)| format!("{k}={n}")).collect();
            println!("{title}: {}", if parts.is_empty() { "-".to_owned() } else { parts.join(", ") });
        }
    }

    /// A tenant's history, as the tenant sees it (positions in its history).
    pub fn history(&self, entries: &[tenantry_app::TenantAuditEntry]) {
        if self.json {
            return print_json(&to_json(&entries.iter().map(AuditEntryView::from).collect::<Vec<_>>()));
        }
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|h| {
                let e = &h.entry;
                vec![
                    h.position.to_string(),
                    format_time(e.record.at),
                    e.record.actor.to_string(),
                    e.record.operation.clone(),
                    opt(&e.record.reason),
                ]
            })
            .collect();
        table(&["#", "at", "actor", "operation", "reason"], &rows);
    }

    pub fn flag_set(&self, key: &FlagKey, scope: &FlagScope, value: &FlagValue) {
        if self.json {
            return print_json(&json!({
                "feature_name": key.as_str(), "scope": scope.level().as_str(),
                "scope_id": if scope.scope_id().is_empty() { None } else { Some(scope.scope_id()) },
                "value": value.to_json(), "enabled": value.as_bool(),
            }));
        }
        println!("flag {key} = {value} at {scope}");
    }

    pub fn evaluation(&self, tenant: &TenantId, key: &FlagKey, e: &Evaluation) {
        if self.json {
            return print_json(&evaluation_json(tenant, key, e));
        }
        match e {
            Evaluation::Resolved { value, level, .. } => println!("{key} = {value} for {tenant} ({})", level.reason()),
            Evaluation::Unknown => println!("{key} is not defined at any level (unknown_flag) for {tenant}"),
            Evaluation::Disabled { .. } => println!("{key} is disabled for every tenant (flag_disabled)"),
        }
    }

    pub fn evaluations(&self, tenant: &TenantId, all: &[(FlagKey, Evaluation)]) {
        if self.json {
            return print_json(&json!({
                "tenant_id": tenant.as_str(),
                "flags": all.iter().map(|(k, e)| evaluation_json(tenant, k, e)).collect::<Vec<_>>(),
            }));
        }
        let rows: Vec<Vec<String>> = all
            .iter()
            .map(|(k, e)| match e {
                Evaluation::Resolved { value, level, .. } => {
                    vec![k.to_string(), value.to_string(), level.reason().to_owned()]
                }
                Evaluation::Unknown => vec![k.to_string(), "-".to_owned(), "unknown_flag".to_owned()],
                Evaluation::Disabled { .. } => vec![k.to_string(), "-".to_owned(), "flag_disabled".to_owned()],
            })
            .collect();
        table(&["feature", "value", "reason"], &rows);
    }

    pub fn flag_rows(&self, rows: &[FlagRow]) {
        if self.json {
            return print_json(&json!(
                rows.iter()
                    .map(|r| json!({
                        "feature_name": r.key.as_str(), "scope": r.scope.level().as_str(),
                        "scope_id": if r.scope.scope_id().is_empty() { None } else { Some(r.scope.scope_id()) },
                        "value": r.value.to_json(), "rollout_percentage": r.rollout,
                        "updated_at": format_time(r.updated_at),
                    }))
                    .collect::<Vec<_>>()
            ));
        }
        let table_rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.key.to_string(),
                    r.scope.to_string(),
                    r.value.to_string(),
                    r.rollout.map(|p| format!("{p}%")).unwrap_or_else(|| "all".into()),
                    format_time(r.updated_at),
                ]
            })
            .collect();
        table(&["feature", "scope", "value", "rollout", "updated_at"], &table_rows);
    }

    pub fn flag_definitions(&self, defs: &[FlagDefinition]) {
        let views: Vec<FlagDefinitionView> = defs.iter().map(FlagDefinitionView::from).collect();
        if self.json {
            return print_json(&json!(views));
        }
        let rows: Vec<Vec<String>> = views
            .iter()
            .map(|d| {
                vec![
                    d.feature_name.clone(),
                    d.kind.clone(),
                    if d.enabled { "on" } else { "DISABLED" }.to_owned(),
                    d.version.to_string(),
                    opt(&d.owner),
                    opt(&d.expires_at),
                    d.description.clone(),
                ]
            })
            .collect();
        table(&["feature", "type", "switch", "version", "owner", "expires", "description"], &rows);
    }

    pub fn kill_switch(&self, key: &FlagKey, enabled: bool) {
        if self.json {
            return print_json(&json!({"feature_name": key.as_str(), "enabled": enabled}));
        }
        if enabled {
            println!("flag {key} enabled: its values apply again");
        } else {
            println!("flag {key} disabled: it evaluates to DISABLED for every tenant");
        }
    }

    pub fn stale_flags(&self, report: &[(FlagDefinition, Vec<StaleReason>)]) {
        let views: Vec<StaleFlagView> = report
            .iter()
            .map(|(d, r)| StaleFlagView {
                definition: FlagDefinitionView::from(d),
                reasons: r.iter().map(|x| x.as_str().to_owned()).collect(),
            })
            .collect();
        if self.json {
            return print_json(&json!(views));
        }
        if views.is_empty() {
            return println!("no stale flags");
        }
        let rows: Vec<Vec<String>> = views
            .iter()
            .map(|v| vec![v.definition.feature_name.clone(), v.definition.created_at.clone(), v.reasons.join(", ")])
            .collect();
        table(&["feature", "created", "why it is stale"], &rows);
    }

    /// Tiers with their default flags (the flag values set at tier scope).
    pub fn tiers(&self, tiers: &[Tier], flags: &[FlagRow]) {
        let defaults = |t: &Tier| -> Vec<(&str, Value)> {
            flags
                .iter()
                .filter(|r| r.scope == FlagScope::Tier(t.name.clone()))
                .map(|r| (r.key.as_str(), r.value.to_json()))
                .collect()
        };
        if self.json {
            return print_json(&json!(tiers
                .iter()
                .map(|t| json!({
                    "name": t.name.as_str(), "rank": t.rank, "description": t.description,
                    "isolation": t.isolation.as_str(), "retention_days": t.retention_days,
                    "default_limits": to_json(&t.default_limits),
                    "default_flags": defaults(t).into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<serde_json::Map<_, _>>(),
                }))
                .collect::<Vec<_>>()));
        }
        let rows: Vec<Vec<String>> = tiers
            .iter()
            .map(|t| {
                let head = [t.name.to_string(), t.rank.to_string(), t.isolation.as_str().to_owned()];
                let limits = t.default_limits.entries().map(|(_, value)| value.to_string());
                head.into_iter().chain(limits).chain([t.retention_days.to_string()]).collect()
            })
            .collect();
        let header: Vec<&str> = ["tier", "rank", "isolation"]
            .into_iter()
            .chain(LimitField::ALL.iter().map(|f| f.as_str()))
            .chain(["retention_d"])
            .collect();
        table(&header, &rows);
    }

    pub fn probes(&self, probes: &[Probe]) {
        if self.json {
            return print_json(&json!(
                probes
                    .iter()
                    .map(|p| json!({"probe": p.name, "outcome": p.outcome.as_str(), "detail": p.detail}))
                    .collect::<Vec<_>>()
            ));
        }
        for p in probes {
            println!("{} {}: {}", p.outcome.as_str().to_uppercase(), p.name, p.detail);
        }
    }
}

/// The message and machine code of an error.
fn exit_message(e: &CliError) -> (String, &'static str) {
    match e {
        CliError::Usage(m) => (m.clone(), "usage"),
        CliError::Refused(e) => {
            let mut msg = e.to_string();
            if let AppError::Unexpected(inner) | AppError::Unavailable(inner) = e {
                msg = format!("{msg}: {inner:#}");
            }
            (msg, e.code().as_str())
        }
        CliError::Failed(e) => (format!("{e:#}"), "failed"),
        CliError::ChecksFailed(m) => (m.clone(), "checks_failed"),
        CliError::Warned(m) => (m.clone(), "checks_warned"),
    }
}

/// Prints an error to stderr: one sentence, or `{"error": {"code", "message"}}` with `--json`.
pub fn print_error(e: &CliError, json: bool) {
    let (message, code) = exit_message(e);
    if json {
        eprintln!("{}", json!({ "error": { "code": code, "message": message } }));
    } else {
        eprintln!("error: {message}");
    }
}
