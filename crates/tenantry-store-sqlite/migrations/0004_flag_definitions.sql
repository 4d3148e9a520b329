-- Flag definitions (type, description, owner, expiry, version) and percentage rollouts.

alter table flag_values add column rollout_percent integer check (rollout_percent is null or rollout_percent between 0 and 100);

create table flag_definitions (
    flag_key    text primary key check (length(flag_key) between 1 and 128 and flag_key not glob '*[^a-z0-9_.-]*'),
    kind        text not null check (kind in ('boolean', 'string', 'number', 'object')),
    description text not null default '' check (length(description) <= 1000),
    owner       text check (owner is null or length(owner) between 1 and 200),
    created_at  text not null,
    expires_at  text,
    version     integer not null check (version >= 1),
    updated_at  text not null
) strict;

-- define every flag that already has values, typed by its first value
insert into flag_definitions (flag_key, kind, description, owner, created_at, expires_at, version, updated_at)
select flag_key,
       case json_type(min(value)) when 'true' then 'boolean' when 'false' then 'boolean' when 'text' then 'string'
            when 'integer' then 'number' when 'real' then 'number' else 'object' end,
       '', null, min(updated_at), null, 1, max(updated_at)
from flag_values group by flag_key;
