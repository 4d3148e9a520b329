-- One search function per index, of every kind, with static SQL, choosing per tenant between
-- the exact scan of the tenant's rows and HNSW at an ef_search sized to the index and to the
-- tenant's share of it.
--
-- Until now a shared index went through `tenantry_search`, whose EXECUTE parses and plans the
-- statement on every call so that the planner can choose per tenant. That planning is ~0.2 ms:
-- noise on a large tenant's query, most of a small tenant's (1.9x, +0.46 ms; BENCHMARKS.md).
-- Static SQL is planned once per connection, so the plan cannot depend on the tenant; the
-- function therefore makes the choice itself, from two numbers it reads cheaply: the tenant's
-- chunk count (`tenant_usage.chunks`, exact, kept by ingest and delete) and the partition's row
-- count as of its last ANALYZE (`pg_class.reltuples`, what the planner itself uses).
--
-- HNSW's recall at a fixed ef_search falls as the index grows and, under a tenant filter, as the
-- tenant's share s of the index shrinks (the graph walk visits mostly other tenants' rows).
-- Measured on this project's data (384-dimension local embeddings, top 10, iterative scan;
-- BENCHMARKS.md): at ef_search 100, recall@10 was 0.965 on a 5,000-row dedicated index, 0.95 /
-- 0.93 / 0.90 at s = 0.66 / 0.26 / 0.066 of 7,550 rows, and 0.87 / 0.86 / 0.82 at s = 0.61 /
-- 0.30 / 0.076 of 19,700 rows. The ef_search that held recall near 0.975 grew like N^0.75 with
-- the index size N and like 1/sqrt(s) with the share, so `tenantry_search_ef` asks for
--     p_ef * max(1, N / 5000)^0.75 / sqrt(s)
-- (p_ef is the caller's ef_search for a 5,000-row index, 100 for top 10) — a fit to those
-- measurements, not a law; the benchmark re-measures recall at several sizes and shares. Above
-- 1000 (pgvector's maximum) the exact scan answers instead, and it does for small tenants too:
-- it is always right, and costs in proportion to the tenant's rows (~2.2 µs a row here), which
-- is less than HNSW's fixed cost plus ~2.3–7 µs per unit of ef_search until the tenant has about
-- four times ef_search rows. A dedicated index is the case s = 1. An index never analyzed
-- (reltuples < 0) has an unknown size: exact. A stale count only lags growth (autovacuum
-- re-analyzes after 10% of the rows change), which lowers ef_search a little.
-- A metadata filter narrows the tenant further than its count says, by a fraction nothing cheap
-- can tell: with the rule above, a filter keeping a tenth of the tenant's chunks measured
-- recall@10 0.93–0.965. A filtered search therefore runs at the maximum, ef_search 1000, or
-- exactly when the tenant has no more than 4,000 chunks; the iterative scan keeps walking until
-- it has k rows, and if the index still comes back short the exact answer follows.

-- The ef_search for a tenant's HNSW search, or 0 for the exact scan. One expression, no
-- sub-select, so that PostgreSQL inlines it into the caller (as a call of its own it cost
-- ~0.1 ms); pure, so the rule is tested on its own (tests/rls.rs) and a benchmark can issue the
-- same statement raw.
create function tenantry_search_ef(p_tenant_rows bigint, p_index_rows double precision, p_ef integer, p_filtered boolean)
returns integer language sql immutable parallel safe as $$
    select case
        when p_tenant_rows <= 0 or p_index_rows <= 0 or p_ef <= 0 then 0
        when p_filtered then case when p_tenant_rows <= 4000 then 0 else 1000 end
        when ceil(p_ef * power(greatest(1.0, greatest(p_index_rows, p_tenant_rows) / 5000.0), 0.75)
                  / sqrt(p_tenant_rows / greatest(p_index_rows, p_tenant_rows))) > 1000 then 0
        when p_tenant_rows <= 4 * ceil(p_ef * power(greatest(1.0, greatest(p_index_rows, p_tenant_rows) / 5000.0), 0.75)
                                       / sqrt(p_tenant_rows / greatest(p_index_rows, p_tenant_rows))) then 0
        else ceil(p_ef * power(greatest(1.0, greatest(p_index_rows, p_tenant_rows) / 5000.0), 0.75)
                  / sqrt(p_tenant_rows / greatest(p_index_rows, p_tenant_rows)))::integer
    end
$$;

-- Replaces 0007's generator: the function it writes, `<partition>_search`, serves both kinds.
-- SECURITY INVOKER (it runs as the app role, under RLS); names its tables, type and operator
-- with their schema instead of pinning search_path with a SET clause (saved and restored on
-- every call). Sets the context and the settings transaction-locally, so in autocommit they end
-- with the statement.
create or replace function tenantry_create_search_function(p_partition text, p_index text, p_dims integer)
returns void language plpgsql set search_path = public, pg_temp as $$
begin
    if p_partition !~ '^chunks_i[0-9]{1,18}$' or p_index !~ '^[a-z0-9][a-z0-9_-]{1,79}$'
       or p_dims not between 1 and 16000 then
        raise exception 'tenantry_create_search_function: invalid partition, index or dimensions' using errcode = '22023';
    end if;
    execute format($f$
create or replace function public.%1$I(p_tenant text, p_query public.vector, p_filter jsonb, p_k integer, p_ef integer)
returns table (document_id text, chunk_index integer, content text, metadata jsonb, title text, score real)
language plpgsql security invoker as $body$
declare
    v_rows bigint;
    v_total real;
    v_ef integer;
    v_found bigint;
begin
    if p_k not between 1 and 1000 then
        raise exception 'search: invalid k' using errcode = '22023';
    end if;
    -- The tenant's context; and the tenant's btree range rather than a scan of every tenant's
    -- rows (exact path), no sort of the whole partition (HNSW path): the cached plans are
    -- generic, they cannot know the tenant's size. Few statements, each costs a few µs.
    perform set_config('tenantry.tenant_id', p_tenant, true), set_config('enable_seqscan', 'off', true),
            set_config('enable_bitmapscan', 'off', true);
    -- the tenant's own usage row (RLS) and the partition's analyzed size
    select (select u.chunks from public.tenant_usage u where u.tenant_id = p_tenant),
           (select c.reltuples from pg_catalog.pg_class c where c.oid = %4$L::regclass)
        into v_rows, v_total;
    v_ef := public.tenantry_search_ef(coalesce(v_rows, 0), v_total, p_ef, p_filter <> '{}'::jsonb);
    if v_ef > 0 then
        perform set_config('hnsw.iterative_scan', 'strict_order', true), set_config('hnsw.ef_search', v_ef::text, true),
                set_config('enable_sort', 'off', true);
        return query
            select k.document_id, k.chunk_index, k.content, k.metadata, doc.title, (1 - k.distance)::real
            from (select c.document_id, c.chunk_index, c.content, c.metadata,
                         c.embedding::public.vector(%3$s) operator(public.<=>) p_query as distance
                  from public.chunks c where c.index_name = %2$L and c.tenant_id = p_tenant and c.metadata @> p_filter
                  order by c.embedding::public.vector(%3$s) operator(public.<=>) p_query limit p_k) k
            join public.documents doc on doc.tenant_id = p_tenant and doc.document_id = k.document_id
            order by k.distance;
        get diagnostics v_found = row_count;
        perform set_config('enable_sort', 'on', true);
    else
        v_found := 0;
    end if;
    if v_found < p_k then
        -- the exact top k (after a short HNSW answer: the caller merges by score, see documents.rs)
        return query
            select k.document_id, k.chunk_index, k.content, k.metadata, doc.title, (1 - k.distance)::real
            from (select c.document_id, c.chunk_index, c.content, c.metadata,
                         (c.embedding operator(public.<=>) p_query) + 0 as distance
                  from public.chunks c where c.index_name = %2$L and c.tenant_id = p_tenant and c.metadata @> p_filter
                  order by (c.embedding operator(public.<=>) p_query) + 0, c.document_id, c.chunk_index limit p_k) k
            join public.documents doc on doc.tenant_id = p_tenant and doc.document_id = k.document_id
            order by k.distance;
    end if;
    -- lifted again: a caller inside a longer transaction does not keep them
    perform set_config('enable_seqscan', 'on', true), set_config('enable_bitmapscan', 'on', true);
end
$body$
$f$, p_partition || '_search', p_index, p_dims, 'public.' || p_partition);
end
$$;


-- Provisioning as in 0007, with the search function for either kind.
create or replace function tenantry_provision_index(p_name text, p_kind text, p_capacity bigint, p_dimensions integer)
returns void language plpgsql security definer set search_path = public, pg_temp as $$
declare
    v_id bigint;
    v_part text;
begin
    if current_setting('tenantry.platform', true) is distinct from 'on' then
        raise exception 'provisioning an index needs the platform path' using errcode = '42501';
    end if;
    perform pg_advisory_xact_lock(7364, 1);
    if exists (select 1 from vector_indexes where index_name = p_name) then
        if exists (select 1 from vector_indexes where index_name = p_name
                   and (kind, capacity, dimensions) = (p_kind, p_capacity, p_dimensions)) then
            return;
        end if;
        raise exception 'index % exists with other settings', p_name using errcode = '23505';
    end if;
    v_id := nextval(pg_get_serial_sequence('vector_indexes', 'index_id'));
    v_part := 'chunks_i' || v_id;
    insert into vector_indexes (index_id, index_name, kind, capacity, dimensions, partition)
        values (v_id, p_name, p_kind, p_capacity, p_dimensions, v_part);
    execute format('create table %I partition of chunks for values in (%L)', v_part, p_name);
    execute format('alter table %I add check (vector_dims(embedding) = %s)', v_part, p_dimensions);
    execute format('create index %I on %I using hnsw ((embedding::vector(%s)) vector_cosine_ops)',
                   v_part || '_hnsw', v_part, p_dimensions);
    execute format('comment on table %I is %L', v_part, 'tenantry:tenant');
    perform tenantry_isolate_by_tenant(v_part::regclass);
    execute format('grant select, insert, update, delete on %I to %I', v_part, session_user);
    perform tenantry_create_search_function(v_part, p_name, p_dimensions);
end
$$;
revoke all on function tenantry_provision_index(text, text, bigint, integer) from public;

-- Every index provisioned before this migration (dedicated ones get the new function in place
-- of 0007's), under the provisioning lock as in 0007: afterwards every index has its
-- `<partition>_search`, and the store relies on that.
select pg_advisory_xact_lock(7364, 1);
select tenantry_create_search_function(partition, index_name, dimensions) from vector_indexes;
