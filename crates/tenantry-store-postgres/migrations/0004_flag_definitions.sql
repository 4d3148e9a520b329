-- Flag definitions (type, description, owner, expiry, version) and percentage rollouts.

-- tenant_flags is under FORCE RLS, even for its owner: read it on the platform path
select set_config('tenantry.platform', 'on', true);

alter table flag_defaults add column rollout_percent smallint check (rollout_percent between 0 and 100);
alter table tenant_flags add column rollout_percent smallint check (rollout_percent between 0 and 100);

create table flag_definitions (
    flag_key    text primary key check (flag_key ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    kind        text not null check (kind in ('boolean', 'string', 'number', 'object')),
    description text not null default '' check (length(description) <= 1000),
    owner       text check (owner is null or length(owner) between 1 and 200),
    created_at  timestamptz not null,
    expires_at  timestamptz,
    version     bigint not null check (version >= 1),
    updated_at  timestamptz not null
);
comment on table flag_definitions is 'tenantry:reference';

insert into flag_definitions (flag_key, kind, description, owner, created_at, expires_at, version, updated_at)
select flag_key,
       case min(jsonb_typeof(value)) when 'boolean' then 'boolean' when 'string' then 'string'
            when 'number' then 'number' else 'object' end,
       '', null, min(updated_at), null, 1, max(updated_at)
from (select flag_key, value, updated_at from flag_defaults
      union all select flag_key, value, updated_at from tenant_flags) v
group by flag_key;
