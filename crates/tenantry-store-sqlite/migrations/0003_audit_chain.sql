-- The audit hash chain: each entry carries the previous entry's hash, its own hash over the
-- canonical encoding (tenantry_domain::audit), and the signing key's id and Ed25519 signature.
-- audit_head is the single row that serializes appends (an append updates it first, which takes
-- the write lock) and remembers the last hash. Entries written before this migration stay
-- unsealed and precede the chain.

alter table audit_log add column request_id text;
alter table audit_log add column prev_hash text check (prev_hash is null or (length(prev_hash) = 64 and prev_hash not glob '*[^0-9a-f]*'));
alter table audit_log add column hash text check (hash is null or (length(hash) = 64 and hash not glob '*[^0-9a-f]*'));
alter table audit_log add column key_id text;
alter table audit_log add column signature text;

create table audit_head (
    id   integer primary key check (id = 1),
    seq  integer not null check (seq >= 0),
    hash text not null
) strict;

insert into audit_head (id, seq, hash)
select 1, coalesce(max(seq), 0), '0000000000000000000000000000000000000000000000000000000000000000' from audit_log;

create table audit_checkpoints (
    id        integer primary key autoincrement,
    seq       integer not null check (seq >= 1),
    head_hash text not null check (length(head_hash) = 64),
    at        text not null,
    key_id    text not null,
    signature text not null
) strict;

create trigger audit_checkpoints_no_update before update on audit_checkpoints
begin
    select raise(abort, 'audit_checkpoints is append-only');
end;

create trigger audit_checkpoints_no_delete before delete on audit_checkpoints
begin
    select raise(abort, 'audit_checkpoints is append-only');
end;
