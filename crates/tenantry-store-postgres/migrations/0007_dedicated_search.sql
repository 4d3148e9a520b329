-- A search function of its own for every dedicated index, with static SQL.
--
-- `tenantry_search` (0006) builds its statement with EXECUTE, so PostgreSQL parses, analyzes and
-- plans it on every call: ~0.2 ms, which is most of what tenant scoping added to a 2 ms HNSW
-- query on a dedicated index (BENCHMARKS.md). On a dedicated index the plan never changes — the
-- tenant owns every row and the search is always the partition's HNSW index — so a function
-- whose statements name the index and its dimensions as literals lets PL/pgSQL keep the plans
-- for the session. Shared indexes stay on `tenantry_search`: there the right plan depends on how
-- many of the index's rows the tenant has (its btree range sorted exactly, or HNSW with the
-- tenant filter), and a cached generic plan could not make that choice per tenant.
--
-- The function is `<partition>_search`, SECURITY INVOKER (it runs as the app role, under RLS),
-- and behaves exactly like `tenantry_search` with the steering on: transaction-local context and
-- settings, HNSW with iterative scan, exact fallback when the index comes back short — except that
-- it answers in one statement and, when it falls back, returns the exact rows after the short
-- ones instead of replacing them (the store merges by score; see `documents.rs`). It names
-- its tables, type and operator with their schema instead of pinning `search_path` with a SET
-- clause, which would save and restore the setting on every call (an invoker's function runs
-- with the caller's rights anyway).

create function tenantry_create_search_function(p_partition text, p_index text, p_dims integer)
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
    v_found bigint;
begin
    if p_k not between 1 and 1000 then
        raise exception 'search: invalid k' using errcode = '22023';
    end if;
    perform set_config('tenantry.tenant_id', p_tenant, true);
    perform set_config('hnsw.iterative_scan', 'strict_order', true);
    perform set_config('hnsw.ef_search', p_ef::text, true);
    perform set_config('enable_sort', 'off', true);
    perform set_config('enable_seqscan', 'off', true);
    perform set_config('enable_bitmapscan', 'off', true);
    return query
        select k.document_id, k.chunk_index, k.content, k.metadata, doc.title, (1 - k.distance)::real
        from (select c.document_id, c.chunk_index, c.content, c.metadata,
                     c.embedding::public.vector(%3$s) operator(public.<=>) p_query as distance
              from public.chunks c where c.index_name = %2$L and c.tenant_id = p_tenant and c.metadata @> p_filter
              order by c.embedding::public.vector(%3$s) operator(public.<=>) p_query limit p_k) k
        join public.documents doc on doc.tenant_id = p_tenant and doc.document_id = k.document_id
        order by k.distance;
    get diagnostics v_found = row_count;
    -- lifted again at once: the fallback is planned without it, and a caller inside a longer
    -- transaction does not keep it
    perform set_config('enable_sort', 'on', true);
    perform set_config('enable_seqscan', 'on', true);
    perform set_config('enable_bitmapscan', 'on', true);
    if v_found < p_k then
        -- The index came back short: the exact top k follows the rows already returned. Every
        -- row carries its exact distance, so the caller's top k of the union by score (ties by
        -- document and chunk), duplicates dropped, is the exact answer.
        return query
            select k.document_id, k.chunk_index, k.content, k.metadata, doc.title, (1 - k.distance)::real
            from (select c.document_id, c.chunk_index, c.content, c.metadata,
                         (c.embedding operator(public.<=>) p_query) + 0 as distance
                  from public.chunks c where c.index_name = %2$L and c.tenant_id = p_tenant and c.metadata @> p_filter
                  order by (c.embedding operator(public.<=>) p_query) + 0, c.document_id, c.chunk_index limit p_k) k
            join public.documents doc on doc.tenant_id = p_tenant and doc.document_id = k.document_id
            order by k.distance;
    end if;
end
$body$
$f$, p_partition || '_search', p_index, p_dims);
end
$$;
revoke all on function tenantry_create_search_function(text, text, integer) from public;

-- Provisioning as in 0006, plus the search function of a dedicated index.
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
    if p_kind = 'dedicated' then
        perform tenantry_create_search_function(v_part, p_name, p_dimensions);
    end if;
end
$$;
revoke all on function tenantry_provision_index(text, text, bigint, integer) from public;

-- Dedicated indexes provisioned before this migration. Provisioning takes the same lock, so an
-- index that an older build is provisioning right now is either here or waits for this commit
-- and then goes through the new `tenantry_provision_index`: every dedicated index has its
-- function, and the store relies on that.
select pg_advisory_xact_lock(7364, 1);
select tenantry_create_search_function(partition, index_name, dimensions)
from vector_indexes where kind = 'dedicated';

-- `tenantry_search` as in 0006, without its SET search_path clause (see above; on the dedicated
-- index dropping it took the added time from about 0.2 to 0.1 ms): names are schema-qualified
-- instead. The signature and `p_steer` stay, so that a binary of the 0006 era still running
-- during an upgrade keeps working; this build always passes `false` (shared indexes only).
create or replace function tenantry_search(p_tenant text, p_index text, p_dims integer, p_query public.vector, p_filter jsonb,
                                p_k integer, p_ef integer, p_steer boolean)
returns table (document_id text, chunk_index integer, content text, metadata jsonb, title text, score real)
language plpgsql security invoker as $$
declare
    v_docs text[] := '{}';
    v_idx integer[] := '{}';
    v_content text[] := '{}';
    v_meta jsonb[] := '{}';
    v_dist double precision[] := '{}';
    r record;
begin
    if p_index !~ '^[a-z0-9][a-z0-9_-]{1,79}$' or p_dims not between 1 and 16000 or p_k not between 1 and 1000 then
        raise exception 'tenantry_search: invalid index, dimensions or k' using errcode = '22023';
    end if;
    perform set_config('tenantry.tenant_id', p_tenant, true);
    perform set_config('hnsw.iterative_scan', 'strict_order', true);
    perform set_config('hnsw.ef_search', p_ef::text, true);
    if p_steer then
        perform set_config('enable_sort', 'off', true);
        perform set_config('enable_seqscan', 'off', true);
        perform set_config('enable_bitmapscan', 'off', true);
    end if;
    for r in execute format(
        'select c.document_id, c.chunk_index, c.content, c.metadata, c.embedding::public.vector(%s) operator(public.<=>) $1 as distance
         from public.chunks c where c.index_name = %L and c.tenant_id = $2 and c.metadata @> $3
         order by c.embedding::public.vector(%s) operator(public.<=>) $1 limit $4', p_dims, p_index, p_dims)
        using p_query, p_tenant, p_filter, p_k
    loop
        v_docs := v_docs || r.document_id;
        v_idx := v_idx || r.chunk_index;
        v_content := v_content || r.content;
        v_meta := v_meta || r.metadata;
        v_dist := v_dist || r.distance;
    end loop;
    if p_steer then
        perform set_config('enable_sort', 'on', true);
        perform set_config('enable_seqscan', 'on', true);
        perform set_config('enable_bitmapscan', 'on', true);
    end if;
    if coalesce(array_length(v_docs, 1), 0) < p_k then
        v_docs := '{}'; v_idx := '{}'; v_content := '{}'; v_meta := '{}'; v_dist := '{}';
        for r in execute format(
            'select c.document_id, c.chunk_index, c.content, c.metadata, (c.embedding operator(public.<=>) $1) + 0 as distance
             from public.chunks c where c.index_name = %L and c.tenant_id = $2 and c.metadata @> $3
             order by (c.embedding operator(public.<=>) $1) + 0, c.document_id, c.chunk_index limit $4', p_index)
            using p_query, p_tenant, p_filter, p_k
        loop
            v_docs := v_docs || r.document_id;
            v_idx := v_idx || r.chunk_index;
            v_content := v_content || r.content;
            v_meta := v_meta || r.metadata;
            v_dist := v_dist || r.distance;
        end loop;
    end if;
    return query
        select u.d, u.i, u.c, u.m, doc.title, (1 - u.dist)::real
        from unnest(v_docs, v_idx, v_content, v_meta, v_dist) with ordinality as u(d, i, c, m, dist, ord)
        join public.documents doc on doc.tenant_id = p_tenant and doc.document_id = u.d
        order by u.ord;
end
$$;
