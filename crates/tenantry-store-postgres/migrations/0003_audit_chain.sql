-- The audit hash chain: each entry carries the previous entry's hash, its own hash over the
-- canonical encoding (tenantry_domain::audit), and the signing key's id and Ed25519 signature.
-- audit_head is the single row that serializes appends (an append updates it first, taking its
-- row lock until commit) and remembers the last hash. Entries written before this migration stay
-- unsealed and precede the chain.

-- audit_log is under FORCE RLS, even for its owner: read it on the platform path
select set_config('tenantry.platform', 'on', true);

alter table audit_log
    add column request_id text,
    add column prev_hash  text check (prev_hash is null or prev_hash ~ '^[0-9a-f]{64}$'),
    add column hash       text check (hash is null or hash ~ '^[0-9a-f]{64}$'),
    add column key_id     text,
    add column signature  text;

create table audit_head (
    id   int primary key check (id = 1),
    seq  bigint not null check (seq >= 0),
    hash text not null check (hash ~ '^[0-9a-f]{64}$')
);
comment on table audit_head is 'tenantry:platform';
insert into audit_head (id, seq, hash) select 1, coalesce(max(seq), 0), repeat('0', 64) from audit_log;

create table audit_checkpoints (
    id        bigserial primary key,
    seq       bigint not null check (seq >= 1),
    head_hash text not null check (head_hash ~ '^[0-9a-f]{64}$'),
    at        timestamptz not null,
    key_id    text not null,
    signature text not null
);
comment on table audit_checkpoints is 'tenantry:platform';
create trigger audit_checkpoints_no_update before update or delete on audit_checkpoints
    for each row execute function tenantry_audit_append_only();
create trigger audit_checkpoints_no_truncate before truncate on audit_checkpoints
    for each statement execute function tenantry_audit_append_only();
select tenantry_platform_only('audit_checkpoints');
