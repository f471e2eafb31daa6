-- 29 · The seed's libraries as registries: prompts (and the prompts agents offer), skills, tools, templates,
-- capabilities, industries and solutions, with their links, load from workbooks and exports like the others.
--
-- Decisions:
-- * Every registry table keeps the source columns a mapping file names in `metadata` (24 did this for the org
--   tables); tools keep it beside `config`, which a registry never writes (it may hold secrets).
-- * The tenant-owned ones get `loaded_from` (23): a load soft-deletes only rows its own source loaded, so seed rows
--   and rows made in the application are never touched. Industries are shared and never deleted by a load.
-- * The loader may read and write exactly these tables and delete only junction rows (as 22 does for the others);
--   every row a load changes is in row_history (28), so a load of them can be undone.

alter table tools add column if not exists metadata jsonb not null default '{}'::jsonb;
alter table templates add column if not exists metadata jsonb not null default '{}'::jsonb;
alter table capabilities add column if not exists metadata jsonb not null default '{}'::jsonb;
alter table industries add column if not exists metadata jsonb not null default '{}'::jsonb;
alter table solutions add column if not exists metadata jsonb not null default '{}'::jsonb;

do $$
declare
    t text;
    owner_column text;
begin
    foreach t in array array['prompts', 'skills', 'tools', 'templates', 'capabilities', 'solutions'] loop
        owner_column := case t when 'solutions' then 'owner_tenant_id' else 'tenant_id' end;
        execute format('alter table public.%I add column if not exists loaded_from jsonb', t);
        execute format('create index if not exists %I on public.%I (%I, (loaded_from ->> ''file'')) '
                       'where deleted_at is null', 'idx_' || t || '_loaded_from', t, owner_column);
    end loop;
end $$;

do $$
declare
    t text;
    loaded constant text[] := array['prompts', 'skills', 'tools', 'templates', 'capabilities', 'industries',
        'solutions', 'agent_tools', 'agent_skills', 'agent_prompts', 'capability_jtbd_mapping', 'solution_agents',
        'solution_prompts'];
    linked constant text[] := array['agent_tools', 'agent_skills', 'agent_prompts', 'capability_jtbd_mapping',
        'solution_agents', 'solution_prompts'];
begin
    foreach t in array loaded loop
        execute format('drop policy if exists pipeline_loader on public.%I', t);
        execute format('create policy pipeline_loader on public.%I to vital_loader using (true) with check (true)', t);
        execute format('grant select, insert, update on public.%I to vital_loader', t);
    end loop;
    foreach t in array linked loop
        execute format('grant delete on public.%I to vital_loader', t);
    end loop;
end $$;

create or replace function private.history_tables()
returns text[]
language sql immutable
as $$
    select array['org_functions', 'org_departments', 'org_roles', 'org_responsibilities', 'function_departments',
                 'function_roles', 'department_roles', 'role_responsibilities', 'personas', 'agents',
                 'agent_functions', 'agent_departments', 'agent_roles', 'jobs_to_be_done', 'jtbd_personas',
                 'solution_industry_matrix', 'prompts', 'skills', 'tools', 'templates', 'capabilities', 'industries',
                 'solutions', 'agent_tools', 'agent_skills', 'agent_prompts', 'capability_jtbd_mapping',
                 'solution_agents', 'solution_prompts']
$$;

do $$
declare
    t text;
    key_columns text[];
    arguments text;
begin
    foreach t in array private.history_tables() loop
        select array_agg(a.attname::text order by array_position(i.indkey::int2[], a.attnum))
          into key_columns
          from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
         where i.indrelid = ('public.' || t)::regclass and i.indisprimary;
        arguments := array_to_string(array(select quote_literal(k) from unnest(key_columns) k), ', ');
        execute format('drop trigger if exists %I on public.%I', t || '_history_inserted', t);
        execute format('create trigger %I after insert on public.%I referencing new table as new_rows '
                       'for each statement execute function private.record_row_history(%s)',
                       t || '_history_inserted', t, arguments);
        execute format('drop trigger if exists %I on public.%I', t || '_history_updated', t);
        execute format('create trigger %I after update on public.%I referencing old table as old_rows new table as new_rows '
                       'for each statement execute function private.record_row_history(%s)',
                       t || '_history_updated', t, arguments);
        execute format('drop trigger if exists %I on public.%I', t || '_history_deleted', t);
        execute format('create trigger %I after delete on public.%I referencing old table as old_rows '
                       'for each statement execute function private.record_row_history(%s)',
                       t || '_history_deleted', t, arguments);
    end loop;
end $$;
