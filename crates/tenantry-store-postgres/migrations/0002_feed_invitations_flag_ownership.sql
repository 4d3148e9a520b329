-- The change feed: a process that changed the registry (a server, or the CLI) numbers an
-- invalidation here after its commit; servers without a Redis bus follow it, and every server
-- records in `replicas` how far it has applied its bus, so a command can wait until the running
-- servers have applied its change. invalidation_head serializes numbering (an append updates it
-- first, holding its row lock until commit), so feed entries become visible in sequence order.

create table invalidation_head (
    id  int primary key check (id = 1),
    seq bigint not null check (seq >= 0)
);
comment on table invalidation_head is 'tenantry:platform';
insert into invalidation_head (id, seq) values (1, 0);

create table invalidation_feed (
    seq    bigint primary key check (seq >= 1),
    target text not null check (target = 'all' or target like 'tenant %'),
    at     timestamptz not null
);
comment on table invalidation_feed is 'tenantry:platform';

create table replicas (
    replica_id  text primary key check (length(replica_id) between 1 and 100),
    bus         text not null check (length(bus) between 1 and 200),
    applied_seq bigint not null check (applied_seq >= 0),
    started_at  timestamptz not null,
    seen_at     timestamptz not null
);
comment on table replicas is 'tenantry:platform';

-- Invitations: a tenant admin's offer of membership, taken up by the user (a platform
-- administrator adds members directly). No foreign key to users: recording one must answer the
-- same whether or not the user exists.
create table invitations (
    tenant_id  text not null references tenants (tenant_id),
    user_id    text not null check (length(user_id) between 2 and 128),
    role       text not null check (role in ('admin', 'analyst', 'reviewer', 'viewer')),
    invited_by text not null,
    created_at timestamptz not null,
    expires_at timestamptz not null,
    primary key (tenant_id, user_id)
);
comment on table invitations is 'tenantry:tenant';
create index invitations_user_idx on invitations (user_id, tenant_id);
select tenantry_isolate_by_tenant('invitations');

-- Flag ownership. Flag definitions (type, description, owner, expiry, version) in
-- flag_definitions are the platform's: only platform writes create or change them. A key a
-- tenant's admin uses that the platform has not defined lives in that tenant's own namespace
-- (tenant_flag_definitions), so no tenant fixes a key's type for another or sees another's
-- activity in versions. A tenant value carries its own version, and platform_set marks a value the
-- platform set as an entitlement, which the tenant's admins cannot change.
select set_config('tenantry.platform', 'on', true);

alter table tenant_flags add column version bigint not null default 1 check (version >= 1);
alter table tenant_flags add column platform_set boolean not null default false;

create table tenant_flag_definitions (
    tenant_id   text not null references tenants (tenant_id),
    flag_key    text not null check (flag_key ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    kind        text not null check (kind in ('boolean', 'string', 'number', 'object')),
    description text not null default '' check (length(description) <= 1000),
    owner       text check (owner is null or length(owner) between 1 and 200),
    created_at  timestamptz not null,
    expires_at  timestamptz,
    version     bigint not null check (version >= 1),
    updated_at  timestamptz not null,
    primary key (tenant_id, flag_key)
);
comment on table tenant_flag_definitions is 'tenantry:tenant';
select tenantry_isolate_by_tenant('tenant_flag_definitions');

-- Existing data: a definition with values only at tenant level (and not switched off) was fixed
-- by whichever tenant used the key first; it moves into the namespace of every tenant using it.
insert into tenant_flag_definitions
    (tenant_id, flag_key, kind, description, owner, created_at, expires_at, version, updated_at)
select tf.tenant_id, d.flag_key, d.kind, d.description, d.owner, d.created_at, d.expires_at, 1, d.updated_at
from flag_definitions d join tenant_flags tf on tf.flag_key = d.flag_key
where d.enabled and not exists (select 1 from flag_defaults f where f.flag_key = d.flag_key);
delete from flag_definitions d
where d.enabled
  and not exists (select 1 from flag_defaults f where f.flag_key = d.flag_key)
  and exists (select 1 from tenant_flags tf where tf.flag_key = d.flag_key);

-- Search functions no longer set the tenant context they were given: they refuse to run unless
-- the caller's context already names that tenant (so no code path can search another tenant's
-- chunks by passing its id). Every existing partition's function is regenerated.
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
    v_found bigint := 0;
begin
    if p_k not between 1 and 1000 or p_ef not between 0 and 1000 then
        raise exception 'search: invalid k or ef_search' using errcode = '22023';
    end if;
    -- the caller sets the tenant context; the function only runs for that tenant
    if p_tenant is null or current_setting('tenantry.tenant_id', true) is distinct from p_tenant then
        raise exception 'search: the tenant context is not %%', p_tenant using errcode = '42501';
    end if;
    perform set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true);
    if p_ef > 0 then
        perform set_config('hnsw.iterative_scan', 'strict_order', true), set_config('hnsw.ef_search', p_ef::text, true),
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
    end if;
    if v_found < p_k then
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
$f$, p_partition || '_search', p_index, p_dims);
end
$$;

do $$
declare
    r record;
begin
    for r in select partition, index_name, dimensions from vector_indexes loop
        perform tenantry_create_search_function(r.partition, r.index_name, r.dimensions);
    end loop;
end
$$;

-- Ingest rate limits (documents and bytes per second), a tier default like every limit. The
-- built-in tiers get their values; a tier an operator added gets gold's; every tenant's resolved
-- value is its tier's (no tenant had set one).
alter table tiers add column ingest_documents_per_second bigint not null default 50
    check (ingest_documents_per_second between 1 and 1000000000000);
alter table tiers add column ingest_bytes_per_second bigint not null default 16777216
    check (ingest_bytes_per_second between 1 and 1000000000000);
alter table tenants add column ingest_documents_per_second bigint not null default 50
    check (ingest_documents_per_second between 1 and 1000000000000);
alter table tenants add column ingest_bytes_per_second bigint not null default 16777216
    check (ingest_bytes_per_second between 1 and 1000000000000);
update tiers set ingest_documents_per_second = 5, ingest_bytes_per_second = 1048576 where name = 'bronze';
update tiers set ingest_documents_per_second = 20, ingest_bytes_per_second = 4194304 where name = 'silver';
update tiers set ingest_documents_per_second = 200, ingest_bytes_per_second = 67108864 where name = 'platinum';
update tenants set
    ingest_documents_per_second = (select t.ingest_documents_per_second from tiers t where t.name = tenants.tier),
    ingest_bytes_per_second = (select t.ingest_bytes_per_second from tiers t where t.name = tenants.tier);

-- audit_head moves only with the log, on every path: one step forward with the same hash (the
-- append taking the lock), then to the hash of the entry written at that position. Any other
-- write — a forged head, a rewind, a jump — is refused.
create function tenantry_audit_head_follows_the_log() returns trigger language plpgsql as $$
begin
    if new.id = old.id and new.seq = old.seq + 1 and new.hash = old.hash then
        return new;
    end if;
    if new.id = old.id and new.seq = old.seq
       and exists (select 1 from audit_log where seq = new.seq and hash = new.hash) then
        return new;
    end if;
    raise exception 'audit_head only follows the audit log' using errcode = 'insufficient_privilege';
end
$$;
create trigger audit_head_follows_the_log before update on audit_head
    for each row execute function tenantry_audit_head_follows_the_log();

-- A new partition's rows are never updated: the application role gets no UPDATE on it.
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
    execute format('grant select, insert, delete on %I to %I', v_part, session_user);
    perform tenantry_create_search_function(v_part, p_name, p_dimensions);
end
$$;

-- Objects left behind in object storage (a batch whose rows did not commit, a deleted document)
-- when object storage could not remove them at the time; a periodic sweep removes them.
create table orphan_objects (
    object_key  text primary key check (length(object_key) between 1 and 1024),
    recorded_at timestamptz not null
);
comment on table orphan_objects is 'tenantry:platform';

-- The chain head is the platform's: on PostgreSQL it is visible and writable on the platform path
-- only (a tenant's transaction sealing its own entry switches to that path for the head's two
-- statements and back).
alter table audit_head enable row level security;
alter table audit_head force row level security;
create policy platform_only on audit_head
    using ((select current_setting('tenantry.platform', true)) = 'on')
    with check ((select current_setting('tenantry.platform', true)) = 'on');
