-- 30 · Registry keys as the platform writes them: the platform's own exports key personas, agents and prompts in
-- snake_case (`heor_specialist_automator`) where the seed's examples use hyphens. Both are valid keys, and neither
-- is rewritten into the other: two source keys that differ only there are two rows (a load never merges them).

alter table personas drop constraint if exists personas_key_format;
alter table personas add constraint personas_key_format check (persona_key ~ '^[a-z0-9]+([-_][a-z0-9]+)*$');
alter table agents drop constraint if exists agents_slug_format;
alter table agents add constraint agents_slug_format check (slug ~ '^[a-z0-9]+([-_][a-z0-9]+)*$');
alter table prompts drop constraint if exists prompts_slug_format;
alter table prompts add constraint prompts_slug_format check (slug ~ '^[a-z0-9]+([-_][a-z0-9]+)*$');
