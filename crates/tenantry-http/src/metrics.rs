//! Prometheus metrics, kept in process and rendered in the text exposition format at `/metrics`.
//!
//! - `tenantry_http_requests_total{method,route,status}` and
//!   `tenantry_http_request_duration_seconds{method,route}` (histogram): `route` is the matched
//!   route template (`/tenants/{tenant_id}`), never the raw path, so its cardinality is the number
//!   of routes (plus `unmatched`).
//! - `tenantry_tenant_requests_total{tenant}`: requests authorized into a tenant. At most
//!   `max_tenant_labels` distinct tenants get their own series (first come); the rest are counted
//!   under `tenant="_other"`, so cardinality is bounded whatever the number of tenants.
//! - `tenantry_tenant_http_requests_total{tenant,outcome}` (`ok` below 400, `client_error`,
//!   `server_error`) and `tenantry_tenant_http_request_duration_seconds{tenant}` (histogram): the
//!   RED metrics of every request on a `/tenants/{tenant_id}…` route, under the same bound on
//!   tenant labels. Answers 401, 403 and 404 are not attributed to the tenant the path names (the
//!   caller may not be in it, or it may not exist), so unauthorized callers cannot take labels.
//! - `tenantry_store_pool_connections{state}` and `tenantry_store_pool_max_connections`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use tenantry_app::PoolStats;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
pub const OTHER_TENANTS: &str = "_other";

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    durations: BTreeMap<(String, String), Histogram>,
    tenants: HashMap<String, u64>,
    other_tenants: u64,
    /// Per tenant label: requests by outcome (ok, client error, server error) and latency.
    tenant_red: BTreeMap<String, ([u64; 3], Histogram)>,
}

/// What `/metrics` reports of the data plane: alerts raised, and per index (name, kind, used,
/// capacity).
#[derive(Debug, Clone, Default)]
pub struct DataMetrics {
    pub alerts_fired: u64,
    pub indexes: Vec<(String, String, u32, u32)>,
    /// Usage events recorded, flushes committed, flushes failed (this process).
    pub metering: (u64, u64, u64),
}

pub struct Metrics {
    inner: Mutex<Inner>,
    max_tenant_labels: usize,
}

impl Metrics {
    pub fn new(max_tenant_labels: usize) -> Self {
        Self { inner: Mutex::new(Inner::default()), max_tenant_labels }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // a panic while holding the lock leaves only counters behind; keep counting
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let mut inner = self.lock();
        *inner.requests.entry((method.to_owned(), route.to_owned(), status)).or_default() += 1;
        inner.durations.entry((method.to_owned(), route.to_owned())).or_default().observe(elapsed);
    }

    /// A request on a tenant's route, for the tenant's RED metrics (see the module doc).
    pub fn observe_tenant_request(&self, tenant: &str, status: u16, elapsed: Duration) {
        if matches!(status, 401 | 403 | 404) {
            return;
        }
        let mut inner = self.lock();
        let label = if inner.tenant_red.contains_key(tenant)
            || inner.tenant_red.keys().filter(|k| k.as_str() != OTHER_TENANTS).count() < self.max_tenant_labels
        {
            tenant.to_owned()
        } else {
            OTHER_TENANTS.to_owned()
        };
        let (outcomes, h) = inner.tenant_red.entry(label).or_default();
        outcomes[match status {
            0..400 => 0,
            400..500 => 1,
            _ => 2,
        }] += 1;
        h.observe(elapsed);
    }

    pub fn observe_tenant(&self, tenant: &str) {
        let mut inner = self.lock();
        let limit = self.max_tenant_labels;
        if let Some(n) = inner.tenants.get_mut(tenant) {
            *n += 1;
        } else if inner.tenants.len() < limit {
            inner.tenants.insert(tenant.to_owned(), 1);
        } else {
            inner.other_tenants += 1;
        }
    }

    /// The exposition text.
    pub fn render(&self, pool: PoolStats, backend: &str, data: &DataMetrics) -> String {
        let inner = self.lock();
        let mut out = String::new();
        out.push_str("# HELP tenantry_index_capacity_alerts_total Shared indexes that reached their alert threshold (this process).\n");
        out.push_str("# TYPE tenantry_index_capacity_alerts_total counter\n");
        let _ = writeln!(out, "tenantry_index_capacity_alerts_total {}", data.alerts_fired);
        out.push_str(
            "# HELP tenantry_index_namespaces Namespaces (tenants) placed on each physical index, and its capacity.\n",
        );
        out.push_str("# TYPE tenantry_index_namespaces gauge\n");
        for (index, kind, used, capacity) in &data.indexes {
            let labels = format!("index=\"{}\",kind=\"{kind}\"", escape(index));
            let _ = writeln!(out, "tenantry_index_namespaces{{{labels},state=\"used\"}} {used}");
            let _ = writeln!(out, "tenantry_index_namespaces{{{labels},state=\"capacity\"}} {capacity}");
        }
        let (events, flushes, failures) = data.metering;
        out.push_str("# HELP tenantry_usage_events_total Usage events written to the cost ledger (this process).\n");
        out.push_str("# TYPE tenantry_usage_events_total counter\n");
        let _ = writeln!(out, "tenantry_usage_events_total {events}");
        out.push_str("# HELP tenantry_usage_flushes_total Group-committed ledger writes, by result (this process).\n");
        out.push_str("# TYPE tenantry_usage_flushes_total counter\n");
        let _ = writeln!(out, "tenantry_usage_flushes_total{{result=\"committed\"}} {flushes}");
        let _ = writeln!(out, "tenantry_usage_flushes_total{{result=\"failed\"}} {failures}");
        out.push_str("# HELP tenantry_http_requests_total HTTP requests by method, route template and status.\n");
        out.push_str("# TYPE tenantry_http_requests_total counter\n");
        for ((method, route, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "tenantry_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
        out.push_str(
            "# HELP tenantry_http_request_duration_seconds HTTP request latency by method and route template.\n",
        );
        out.push_str("# TYPE tenantry_http_request_duration_seconds histogram\n");
        for ((method, route), h) in &inner.durations {
            let labels = format!("method=\"{}\",route=\"{}\"", escape(method), escape(route));
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "tenantry_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(out, "tenantry_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "tenantry_http_request_duration_seconds_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "tenantry_http_request_duration_seconds_count{{{labels}}} {}", h.count);
        }
        out.push_str("# HELP tenantry_tenant_requests_total Requests authorized into a tenant (bounded labels; the rest under _other).\n");
        out.push_str("# TYPE tenantry_tenant_requests_total counter\n");
        let mut tenants: Vec<_> = inner.tenants.iter().collect();
        tenants.sort();
        for (tenant, n) in tenants {
            let _ = writeln!(out, "tenantry_tenant_requests_total{{tenant=\"{}\"}} {n}", escape(tenant));
        }
        if inner.other_tenants > 0 {
            let _ =
                writeln!(out, "tenantry_tenant_requests_total{{tenant=\"{OTHER_TENANTS}\"}} {}", inner.other_tenants);
        }
        out.push_str("# HELP tenantry_tenant_http_requests_total Requests on a tenant's routes by outcome.\n");
        out.push_str("# TYPE tenantry_tenant_http_requests_total counter\n");
        for (tenant, (outcomes, _)) in &inner.tenant_red {
            for (outcome, n) in ["ok", "client_error", "server_error"].iter().zip(outcomes) {
                let _ = writeln!(
                    out,
                    "tenantry_tenant_http_requests_total{{tenant=\"{}\",outcome=\"{outcome}\"}} {n}",
                    escape(tenant)
                );
            }
        }
        out.push_str(
            "# HELP tenantry_tenant_http_request_duration_seconds Latency of requests on a tenant's routes.\n",
        );
        out.push_str("# TYPE tenantry_tenant_http_request_duration_seconds histogram\n");
        for (tenant, (_, h)) in &inner.tenant_red {
            let labels = format!("tenant=\"{}\"", escape(tenant));
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "tenantry_tenant_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "tenantry_tenant_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "tenantry_tenant_http_request_duration_seconds_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "tenantry_tenant_http_request_duration_seconds_count{{{labels}}} {}", h.count);
        }
        out.push_str("# HELP tenantry_store_pool_connections Store connection pool connections by state.\n");
        out.push_str("# TYPE tenantry_store_pool_connections gauge\n");
        let busy = pool.size.saturating_sub(pool.idle);
        let _ = writeln!(out, "tenantry_store_pool_connections{{backend=\"{backend}\",state=\"idle\"}} {}", pool.idle);
        let _ = writeln!(out, "tenantry_store_pool_connections{{backend=\"{backend}\",state=\"busy\"}} {busy}");
        out.push_str("# HELP tenantry_store_pool_max_connections Store connection pool capacity.\n");
        out.push_str("# TYPE tenantry_store_pool_max_connections gauge\n");
        let _ = writeln!(out, "tenantry_store_pool_max_connections{{backend=\"{backend}\"}} {}", pool.max);
        out
    }
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_labels_are_bounded() {
        let m = Metrics::new(2);
        for t in ["a", "b", "c", "d", "a"] {
            m.observe_tenant(t);
        }
        let text = m.render(PoolStats::default(), "sqlite", &DataMetrics::default());
        assert!(text.contains("tenantry_tenant_requests_total{tenant=\"a\"} 2"), "{text}");
        assert!(text.contains("tenantry_tenant_requests_total{tenant=\"b\"} 1"), "{text}");
        assert!(!text.contains("tenant=\"c\""), "{text}");
        assert!(text.contains("tenantry_tenant_requests_total{tenant=\"_other\"} 2"), "{text}");
    }

    #[test]
    fn tenant_red_metrics_count_outcomes_and_latency_under_the_label_bound() {
        let m = Metrics::new(1);
        m.observe_tenant_request("acme", 200, Duration::from_millis(3));
        m.observe_tenant_request("acme", 422, Duration::from_millis(3));
        m.observe_tenant_request("acme", 503, Duration::from_secs(20));
        m.observe_tenant_request("globex", 200, Duration::from_millis(3));
        m.observe_tenant_request("probe", 403, Duration::from_millis(1));
        m.observe_tenant_request("probe", 404, Duration::from_millis(1));
        let text = m.render(PoolStats::default(), "sqlite", &DataMetrics::default());
        for line in [
            "tenantry_tenant_http_requests_total{tenant=\"acme\",outcome=\"ok\"} 1",
            "tenantry_tenant_http_requests_total{tenant=\"acme\",outcome=\"client_error\"} 1",
            "tenantry_tenant_http_requests_total{tenant=\"acme\",outcome=\"server_error\"} 1",
            "tenantry_tenant_http_requests_total{tenant=\"_other\",outcome=\"ok\"} 1",
            "tenantry_tenant_http_request_duration_seconds_bucket{tenant=\"acme\",le=\"0.005\"} 2",
            "tenantry_tenant_http_request_duration_seconds_count{tenant=\"acme\"} 3",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert!(!text.contains("probe"), "refused callers take no label: {text}");
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::new(10);
        m.observe_request("GET", "/x", 200, Duration::from_millis(3));
        m.observe_request("GET", "/x", 404, Duration::from_secs(20));
        let data = DataMetrics {
            alerts_fired: 2,
            indexes: vec![("shared-1".into(), "shared".into(), 80, 100)],
            metering: (12, 3, 1),
        };
        let text = m.render(PoolStats { size: 3, idle: 1, max: 10 }, "postgres", &data);
        assert!(text.contains("tenantry_index_capacity_alerts_total 2"), "{text}");
        assert!(
            text.contains("tenantry_index_namespaces{index=\"shared-1\",kind=\"shared\",state=\"used\"} 80"),
            "{text}"
        );
        assert!(text.contains("le=\"0.0025\"} 0"), "{text}");
        assert!(text.contains("le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("le=\"10\"} 1"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 2"), "{text}");
        assert!(text.contains("status=\"404\"} 1"), "{text}");
        assert!(text.contains("state=\"busy\"} 2"), "{text}");
        assert!(text.contains("tenantry_usage_events_total 12"), "{text}");
        assert!(text.contains("tenantry_usage_flushes_total{result=\"failed\"} 1"), "{text}");
    }
}
