-- Row-level security policies that read the tenant context once per statement, not once per row.
--
-- The policies of 0001/0002 compare each row with `current_setting('tenantry.tenant_id', true)`.
-- `current_setting` is STABLE, not IMMUTABLE, so the planner cannot fold it: a scan evaluated it
-- (and the platform policy's `current_setting('tenantry.platform', true)`) for every row it
-- read, which on a tenant's exact search over 500 chunks was ~0.05 ms (BENCHMARKS.md). Wrapped in
-- a scalar sub-select, each becomes an InitPlan, computed once when the statement runs and then
-- compared like a parameter. The meaning is unchanged: the same settings, read in the same
-- statement; a statement that sets the context (the search functions) runs before the one that
-- reads it.

create or replace function tenantry_isolate_by_tenant(target regclass) returns void language plpgsql as $$
begin
    execute format('alter table %s enable row level security', target);
    execute format('alter table %s force row level security', target);
    execute format($p$create policy tenant_isolation on %s
                      using (tenant_id = (select current_setting('tenantry.tenant_id', true)))
                      with check (tenant_id = (select current_setting('tenantry.tenant_id', true)))$p$, target);
    execute format($p$create policy platform_access on %s
                      using ((select current_setting('tenantry.platform', true)) = 'on')
                      with check ((select current_setting('tenantry.platform', true)) = 'on')$p$, target);
end
$$;

create or replace function tenantry_platform_only(target regclass) returns void language plpgsql as $$
begin
    execute format('alter table %s enable row level security', target);
    execute format('alter table %s force row level security', target);
    execute format($p$create policy platform_access on %s
                      using ((select current_setting('tenantry.platform', true)) = 'on')
                      with check ((select current_setting('tenantry.platform', true)) = 'on')$p$, target);
end
$$;

-- Every existing policy of the two kinds (tables and index partitions alike), under the
-- provisioning lock so that no partition is being created meanwhile with the old form.
select pg_advisory_xact_lock(7364, 1);
do $$
declare
    r record;
begin
    for r in select c.oid::regclass as target, p.polname
             from pg_policy p join pg_class c on c.oid = p.polrelid
             join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = 'public' and p.polname in ('tenant_isolation', 'platform_access')
    loop
        if r.polname = 'tenant_isolation' then
            execute format($p$alter policy tenant_isolation on %s
                              using (tenant_id = (select current_setting('tenantry.tenant_id', true)))
                              with check (tenant_id = (select current_setting('tenantry.tenant_id', true)))$p$, r.target);
        else
            execute format($p$alter policy platform_access on %s
                              using ((select current_setting('tenantry.platform', true)) = 'on')
                              with check ((select current_setting('tenantry.platform', true)) = 'on')$p$, r.target);
        end if;
    end loop;
end
$$;
