-- The data plane: physical vector indexes, tenant placements, documents, chunks with their
-- embeddings (pgvector), and per-tenant usage counters for exact quota enforcement.
--
-- Each physical index is one LIST partition of `chunks` with its own HNSW index (cosine), created
-- by `tenantry_provision_index` — a SECURITY DEFINER function, because the application role owns
-- nothing and cannot run DDL itself. The embedding column is untyped `vector`; each partition's
-- HNSW index is on `embedding::vector(<dimensions>)` and a CHECK pins the dimensions, so one
-- deployment can hold indexes of different models.

create table vector_indexes (
    index_id    bigserial unique,
    index_name  text primary key check (index_name ~ '^[a-z0-9][a-z0-9_-]{1,79}$'),
    kind        text not null check (kind in ('shared', 'dedicated')),
    capacity    bigint not null check (capacity between 1 and 1000000),
    dimensions  integer not null check (dimensions between 1 and 16000),
    partition   text not null unique,
    created_at  timestamptz not null default now()
);
-- The pool is a small global catalog (replicated when distributed); written only by the
-- provisioning function.
comment on table vector_indexes is 'tenantry:reference';

create table tenant_placements (
    tenant_id   text primary key references tenants (tenant_id),
    index_name  text not null references vector_indexes (index_name),
    kind        text not null check (kind in ('namespace', 'dedicated')),
    placed_at   timestamptz not null
);
comment on table tenant_placements is 'tenantry:tenant';
create index tenant_placements_index_idx on tenant_placements (index_name);

create table documents (
    tenant_id        text not null references tenants (tenant_id),
    document_id      text not null check (document_id ~ '^d-[0-9a-f]{1,62}$'),
    client_id        text check (client_id is null or length(client_id) between 1 and 200),
    title            text not null check (length(title) between 1 and 500),
    metadata         jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
    bytes            bigint not null check (bytes >= 0),
    chunk_count      bigint not null check (chunk_count >= 0),
    token_count      bigint not null check (token_count >= 0),
    embedding_model  text not null check (length(embedding_model) between 1 and 200),
    object_key       text not null check (object_key = 'tenants/' || tenant_id || '/documents/' || document_id || '.json'),
    created_at       timestamptz not null,
    primary key (tenant_id, document_id),
    unique (tenant_id, client_id)
);
comment on table documents is 'tenantry:tenant';

create table chunks (
    tenant_id    text not null,
    index_name   text not null,
    document_id  text not null,
    chunk_index  integer not null check (chunk_index >= 0),
    content      text not null,
    start_byte   bigint not null check (start_byte >= 0),
    end_byte     bigint not null check (end_byte >= start_byte),
    metadata     jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
    embedding    vector not null,
    primary key (tenant_id, index_name, document_id, chunk_index),
    foreign key (tenant_id, document_id) references documents (tenant_id, document_id) on delete cascade
) partition by list (index_name);
comment on table chunks is 'tenantry:tenant';

create table tenant_usage (
    tenant_id  text primary key references tenants (tenant_id),
    documents  bigint not null default 0 check (documents >= 0),
    bytes      bigint not null default 0 check (bytes >= 0),
    chunks     bigint not null default 0 check (chunks >= 0)
);
comment on table tenant_usage is 'tenantry:tenant';

select tenantry_isolate_by_tenant('tenant_placements');
select tenantry_isolate_by_tenant('documents');
select tenantry_isolate_by_tenant('chunks');
select tenantry_isolate_by_tenant('tenant_usage');

-- Creates a physical index: its pool row and its partition of `chunks` (RLS forced, the same
-- policies as every tenant table, an HNSW index for cosine distance). Platform path only.
-- Idempotent for the same name and settings.
create function tenantry_provision_index(p_name text, p_kind text, p_capacity bigint, p_dimensions integer)
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
end
$$;
revoke all on function tenantry_provision_index(text, text, bigint, integer) from public;

-- One tenant's top-k search in one round trip: sets the tenant's RLS context and the search
-- settings (transaction-local, so in autocommit they end with the statement), asks the
-- partition's HNSW index, and if that comes back with fewer than k rows, answers exactly from the
-- tenant's rows instead. SECURITY INVOKER: it runs as the caller (the app role), under RLS.
-- `p_steer` keeps the planner on the HNSW index (dedicated indexes, where the tenant filter
-- selects every row and the cost model would rather sort the whole partition); the steering is
-- lifted again before the exact fallback is planned.
create function tenantry_search(p_tenant text, p_index text, p_dims integer, p_query vector, p_filter jsonb,
                                p_k integer, p_ef integer, p_steer boolean)
returns table (document_id text, chunk_index integer, content text, metadata jsonb, title text, score real)
language plpgsql security invoker set search_path = public, pg_temp as $$
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
        'select c.document_id, c.chunk_index, c.content, c.metadata, c.embedding::vector(%s) <=> $1 as distance
         from chunks c where c.index_name = %L and c.tenant_id = $2 and c.metadata @> $3
         order by c.embedding::vector(%s) <=> $1 limit $4', p_dims, p_index, p_dims)
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
            'select c.document_id, c.chunk_index, c.content, c.metadata, (c.embedding <=> $1) + 0 as distance
             from chunks c where c.index_name = %L and c.tenant_id = $2 and c.metadata @> $3
             order by (c.embedding <=> $1) + 0, c.document_id, c.chunk_index limit $4', p_index)
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
        join documents doc on doc.tenant_id = p_tenant and doc.document_id = u.d
        order by u.ord;
end
$$;
