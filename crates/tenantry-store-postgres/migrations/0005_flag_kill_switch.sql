-- The kill switch: a disabled flag evaluates to DISABLED for every tenant, whatever its values.

alter table flag_definitions add column enabled boolean not null default true;
