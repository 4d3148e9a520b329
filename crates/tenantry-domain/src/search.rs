//! How a tenant's top-k search runs on an approximate (HNSW) index: the exact scan of the
//! tenant's own rows, or the index at an `ef_search` sized to the index and to the tenant's share
//! of it. Pure: the store reads the two counts, asks [`plan_search`], and runs the statement the
//! plan names. Both paths answer a complete top k (the HNSW path is followed by the exact scan
//! when it comes back short), so the plan decides cost and recall, never correctness.
//!
//! Where the numbers come from (measured on this project's data, BENCHMARKS.md): HNSW's recall at
//! a fixed `ef_search` falls as the index grows and, under a tenant filter, as the tenant's share
//! of the index shrinks. The `ef_search` that held recall@10 near 0.975 grew like `N^0.75` with
//! the index size and like `1/sqrt(share)`: a fit to those measurements, not a law. The exact
//! scan costs in proportion to the tenant's rows and beats HNSW's fixed cost until the tenant has
//! about four times `ef_search` rows.

/// pgvector's largest `hnsw.ef_search`; a search that would need more runs exactly.
pub const MAX_EF_SEARCH: u32 = 1000;
/// The index size the base `ef_search` is calibrated for.
const CALIBRATION_ROWS: f64 = 5000.0;
/// Up to this many rows a filtered search runs exactly; above, HNSW at [`MAX_EF_SEARCH`]: nothing
/// cheap tells how far a metadata filter narrows the tenant (a filter keeping a tenth of the
/// tenant measured recall@10 0.93–0.965 under the unfiltered rule).
const FILTERED_EXACT_ROWS: u64 = 4000;
/// The exact scan answers while the tenant has at most this many rows per unit of `ef_search`.
const EXACT_ROWS_PER_EF: u64 = 4;

/// The way one search runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchPlan {
    /// Every row of the tenant (matching the filter), scored and sorted: always the exact answer.
    Exact,
    /// The approximate index with the tenant filter applied during the walk (iterative scan) at
    /// this `ef_search` (1..=[`MAX_EF_SEARCH`]).
    Hnsw { ef_search: u32 },
}

/// What the plan is computed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchInputs {
    /// The tenant's rows in the index (exact: kept by ingest and delete).
    pub tenant_rows: u64,
    /// The index's rows as the database last measured them; `None` when it never has (then the
    /// size is unknown and the search runs exactly).
    pub index_rows: Option<f64>,
    pub top_k: u32,
    /// Whether a metadata filter narrows the tenant's rows further.
    pub filtered: bool,
}

/// The base `ef_search` for `top_k`, as for a tenant alone in a 5,000-row index: at least 100
/// (pgvector's default of 40 measured recall@10 of about 0.88 here), and four times `top_k`.
pub fn base_ef_search(top_k: u32) -> u32 {
    top_k.saturating_mul(4).max(100)
}

/// The plan for one search: exact for small tenants, unknown index sizes and whenever HNSW would
/// need more than [`MAX_EF_SEARCH`]; otherwise HNSW at
/// `base * max(1, N / 5000)^0.75 / sqrt(tenant_rows / N)`; filtered, exact up to 4,000 rows and
/// HNSW at the maximum above. A count that lags (the index grew since it was measured) only
/// lowers `ef_search` a little; `N` is never taken below the tenant's own rows.
pub fn plan_search(inputs: SearchInputs) -> SearchPlan {
    let SearchInputs { tenant_rows, index_rows, top_k, filtered } = inputs;
    let base = base_ef_search(top_k);
    let index_rows = match index_rows {
        Some(n) if n > 0.0 && n.is_finite() => n,
        _ => return SearchPlan::Exact,
    };
    if tenant_rows == 0 {
        return SearchPlan::Exact;
    }
    if filtered {
        return if tenant_rows <= FILTERED_EXACT_ROWS {
            SearchPlan::Exact
        } else {
            SearchPlan::Hnsw { ef_search: MAX_EF_SEARCH }
        };
    }
    let tenant = tenant_rows as f64;
    let n = index_rows.max(tenant);
    let share = tenant / n;
    let needed = (f64::from(base) * (n / CALIBRATION_ROWS).max(1.0).powf(0.75) / share.sqrt()).ceil();
    if needed > f64::from(MAX_EF_SEARCH) {
        return SearchPlan::Exact;
    }
    // needed is in 1..=1000 here
    let ef_search = needed as u32;
    if tenant_rows <= EXACT_ROWS_PER_EF * u64::from(ef_search) {
        return SearchPlan::Exact;
    }
    SearchPlan::Hnsw { ef_search }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(tenant_rows: u64, index_rows: Option<f64>, top_k: u32, filtered: bool, expected: SearchPlan) {
        let got = plan_search(SearchInputs { tenant_rows, index_rows, top_k, filtered });
        assert_eq!(got, expected, "plan_search({tenant_rows}, {index_rows:?}, {top_k}, {filtered})");
    }

    const fn hnsw(ef_search: u32) -> SearchPlan {
        SearchPlan::Hnsw { ef_search }
    }

    #[test]
    fn the_plan_sizes_ef_search_by_the_index_and_the_tenants_share() {
        use SearchPlan::Exact;
        let cases: [(u64, Option<f64>, u32, bool, SearchPlan); 17] = [
            (0, Some(1000.0), 10, false, Exact),          // no chunks
            (5000, None, 10, false, Exact),               // index never analyzed
            (5000, Some(-1.0), 10, false, Exact),         // PostgreSQL's "never analyzed"
            (5000, Some(5000.0), 10, false, hnsw(100)),   // a 5,000-row index of its own: the base
            (5000, Some(4000.0), 10, false, hnsw(100)),   // a stale, smaller index count: still a share of 1
            (2000, Some(7550.0), 10, false, hnsw(265)),   // 100 * 1.51^0.75 / sqrt(0.2649)
            (5000, Some(7550.0), 10, false, hnsw(168)),   // share 0.662
            (12000, Some(19700.0), 10, false, hnsw(359)), // 100 * 3.94^0.75 / sqrt(0.609)
            (6000, Some(19700.0), 10, false, hnsw(507)),  // share 0.305
            (400, Some(400.0), 10, false, Exact),         // 400 <= 4 * 100: the exact scan is as cheap
            (401, Some(401.0), 10, false, hnsw(100)),     // one more row: HNSW
            (1500, Some(19700.0), 10, false, Exact),      // share 0.076 would need 1,014: exact
            (50, Some(1e6), 10, false, Exact),            // a small tenant on a large index
            (4000, Some(7550.0), 10, true, Exact),        // filtered, up to 4,000 chunks: exact
            (4001, Some(7550.0), 10, true, hnsw(1000)),   // filtered, more: HNSW at the maximum
            (5000, None, 10, true, Exact),                // filtered, index never analyzed
            (5000, Some(5000.0), 50, false, hnsw(200)),   // top 50: base 200
        ];
        for (rows, total, top_k, filtered, expected) in cases {
            check(rows, total, top_k, filtered, expected);
        }
    }

    #[test]
    fn the_base_is_at_least_100_and_four_times_top_k() {
        assert_eq!(base_ef_search(1), 100);
        assert_eq!(base_ef_search(25), 100);
        assert_eq!(base_ef_search(26), 104);
        assert_eq!(base_ef_search(u32::MAX), u32::MAX);
    }

    proptest! {
        /// HNSW only within pgvector's range, only when the tenant is clearly larger than the
        /// walk, and never more ef_search for a larger share of the same index.
        #[test]
        fn plans_stay_in_range_and_ef_search_falls_as_the_share_grows(
            tenant_rows in 0u64..2_000_000,
            extra in 0u64..2_000_000,
            top_k in 1u32..=100,
            filtered: bool,
        ) {
            let index_rows = (tenant_rows + extra) as f64;
            let plan = plan_search(SearchInputs { tenant_rows, index_rows: Some(index_rows), top_k, filtered });
            if let SearchPlan::Hnsw { ef_search } = plan {
                prop_assert!((1..=MAX_EF_SEARCH).contains(&ef_search));
                prop_assert!(filtered || tenant_rows > EXACT_ROWS_PER_EF * u64::from(ef_search));
                prop_assert!(filtered || ef_search >= base_ef_search(top_k));
                if !filtered && extra > 0 {
                    let more = plan_search(SearchInputs {
                        tenant_rows: tenant_rows + extra, index_rows: Some(index_rows), top_k, filtered,
                    });
                    match more {
                        SearchPlan::Hnsw { ef_search: ef_more } => prop_assert!(ef_more <= ef_search),
                        SearchPlan::Exact => prop_assert!(false, "a larger share fell back to exact"),
                    }
                }
            }
        }
    }
}
