-- The change feed: a process that changed the registry (a server, or the CLI) numbers an
-- invalidation here after its commit; servers without a Redis bus follow it, and every server
-- records in `replicas` how far it has applied its bus, so a command can wait until the running
-- servers have applied its change. Writes are serialized by SQLite, so feed entries become
-- visible in sequence order.

create table invalidation_head (
    id  integer primary key check (id = 1),
    seq integer not null check (seq >= 0)
) strict;
insert into invalidation_head (id, seq) values (1, 0);

create table invalidation_feed (
    seq    integer primary key check (seq >= 1),
    target text not null check (target = 'all' or target like 'tenant %'),
    at     text not null
) strict;

create table replicas (
    replica_id  text primary key check (length(replica_id) between 1 and 100),
    bus         text not null check (length(bus) between 1 and 200),
    applied_seq integer not null check (applied_seq >= 0),
    started_at  text not null,
    seen_at     text not null
) strict;
