-- The kill switch: a disabled flag evaluates to DISABLED for every tenant, whatever its values.

alter table flag_definitions add column enabled integer not null default 1 check (enabled in (0, 1));
