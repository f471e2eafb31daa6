-- 28 · Row history: what every load did to every registry row, so that one load can be seen and taken back.
--
-- * `row_history` holds one entry per row a load inserted, changed or deleted: the row's primary key, and the columns
--   that changed, before and after (an insert's whole row in `after`, a deleted link's whole row in `before`); a soft
--   delete is an update of `deleted_at`. Entries are written by statement-level triggers on every registry table, in
--   the load's own transaction, and name the load (`vital.load_id`, set by the loader for its transaction); changes
--   made outside a load (agent profile vectors, an operator's hand edit) are not recorded.
-- * `private.revert_history_entry` puts one entry back: an inserted row is soft-deleted (deleted, for a table without
--   `deleted_at` or a link), a changed row gets its old values, a deleted link comes back. It runs as the owner, for
--   the registry tables only, so the loader can take back a load without holding delete rights it never needs
--   otherwise. Which entries to revert, in which order, and whether a later load stands in the way is decided by
--   vital_pipelines/loading/history.py; the undo is a load of its own, with its own history, so it can be undone.

create table if not exists row_history (
    id          bigint generated always as identity primary key,
    load_id     uuid not null,
    table_name  text not null,
    row_key     jsonb not null,
    operation   text not null check (operation in ('insert', 'update', 'delete')),
    before      jsonb,
    after       jsonb,
    recorded_at timestamptz not null default clock_timestamp()
);
create index if not exists idx_row_history_load on row_history (load_id, id);
create index if not exists idx_row_history_row on row_history (table_name, row_key, id);

alter table row_history enable row level security;
drop policy if exists pipeline_loader_read on row_history;
create policy pipeline_loader_read on row_history for select to vital_loader using (true);
grant select on row_history to vital_loader;

create or replace function private.history_tables()
returns text[]
language sql immutable
as $$
    select array['org_functions', 'org_departments', 'org_roles', 'org_responsibilities', 'function_departments',
                 'function_roles', 'department_roles', 'role_responsibilities', 'personas', 'agents',
                 'agent_functions', 'agent_departments', 'agent_roles', 'jobs_to_be_done', 'jtbd_personas',
                 'solution_industry_matrix']
$$;

create or replace function private.jsonb_pick(doc jsonb, keys text[])
returns jsonb
language sql immutable parallel safe
as $$
    select coalesce(jsonb_object_agg(k, doc -> k), '{}'::jsonb) from unnest(keys) k
$$;

-- The columns whose values differ between two versions of a row: (before, after).
create or replace function private.jsonb_changes(old_row jsonb, new_row jsonb, out before jsonb, out after jsonb)
language sql immutable parallel safe
as $$
    select jsonb_object_agg(n.key, old_row -> n.key), jsonb_object_agg(n.key, n.value)
      from jsonb_each(new_row) n where (old_row -> n.key) is distinct from n.value
$$;

create or replace function private.record_row_history()
returns trigger
language plpgsql security definer
set search_path = pg_catalog, public
as $$
declare
    load constant uuid := nullif(current_setting('vital.load_id', true), '')::uuid;
    key_columns constant text[] := tg_argv;
begin
    if load is null then
        return null;
    end if;
    if tg_op = 'INSERT' then
        insert into public.row_history (load_id, table_name, row_key, operation, after)
        select load, tg_table_name, private.jsonb_pick(r, key_columns), 'insert', r
          from (select to_jsonb(n) as r from new_rows n) rows;
    elsif tg_op = 'DELETE' then
        insert into public.row_history (load_id, table_name, row_key, operation, before)
        select load, tg_table_name, private.jsonb_pick(r, key_columns), 'delete', r
          from (select to_jsonb(o) as r from old_rows o) rows;
    else
        insert into public.row_history (load_id, table_name, row_key, operation, before, after)
        select load, tg_table_name, old_rows.k, 'update', c.before, c.after
          from (select private.jsonb_pick(to_jsonb(o), key_columns) as k, to_jsonb(o) as r from old_rows o) old_rows
          join (select private.jsonb_pick(to_jsonb(n), key_columns) as k, to_jsonb(n) as r from new_rows n) new_rows
            on new_rows.k = old_rows.k,
               lateral private.jsonb_changes(old_rows.r, new_rows.r) c
         where c.after is not null;
    end if;
    return null;
end
$$;

do $$
declare
    t text;
    key_columns text[];
begin
    foreach t in array private.history_tables() loop
        select array_agg(a.attname::text order by array_position(i.indkey::int2[], a.attnum))
          into key_columns
          from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
         where i.indrelid = ('public.' || t)::regclass and i.indisprimary;
        execute format('drop trigger if exists %I on public.%I', t || '_history_inserted', t);
        execute format('create trigger %I after insert on public.%I referencing new table as new_rows '
                       'for each statement execute function private.record_row_history(%s)',
                       t || '_history_inserted', t, array_to_string(array(select quote_literal(k) from unnest(key_columns) k), ', '));
        execute format('drop trigger if exists %I on public.%I', t || '_history_updated', t);
        execute format('create trigger %I after update on public.%I referencing old table as old_rows new table as new_rows '
                       'for each statement execute function private.record_row_history(%s)',
                       t || '_history_updated', t, array_to_string(array(select quote_literal(k) from unnest(key_columns) k), ', '));
        execute format('drop trigger if exists %I on public.%I', t || '_history_deleted', t);
        execute format('create trigger %I after delete on public.%I referencing old table as old_rows '
                       'for each statement execute function private.record_row_history(%s)',
                       t || '_history_deleted', t, array_to_string(array(select quote_literal(k) from unnest(key_columns) k), ', '));
    end loop;
end $$;

create or replace function private.revert_history_entry(entry bigint)
returns void
language plpgsql security definer
set search_path = pg_catalog, public
as $$
declare
    h public.row_history;
    keys text;
    columns text;
    soft boolean;
begin
    select * into strict h from public.row_history where id = entry;
    if not (h.table_name = any(private.history_tables())) then
        raise exception 'row history entry % is not of a registry table', entry;
    end if;
    keys := (select string_agg(quote_ident(k), ', ') from jsonb_object_keys(h.row_key) k);
    soft := exists (select 1 from pg_attribute where attrelid = ('public.' || h.table_name)::regclass
                      and attname = 'deleted_at' and not attisdropped);
    if h.operation = 'insert' and soft then
        execute format('update public.%I set deleted_at = clock_timestamp() where (%s) = '
                       '(select %s from jsonb_populate_record(null::public.%I, $1)) and deleted_at is null',
                       h.table_name, keys, keys, h.table_name) using h.row_key;
    elsif h.operation = 'insert' then
        execute format('delete from public.%I where (%s) = (select %s from jsonb_populate_record(null::public.%I, $1))',
                       h.table_name, keys, keys, h.table_name) using h.row_key;
    elsif h.operation = 'update' then
        -- A generated column (jobs_to_be_done.opportunity_score) follows its inputs; it cannot be set.
        columns := (select string_agg(quote_ident(k), ', ') from jsonb_object_keys(h.before) k
                      join pg_attribute a on a.attrelid = ('public.' || h.table_name)::regclass and a.attname = k
                     where a.attgenerated = '' and not a.attisdropped);
        if columns is null then
            return;
        end if;
        execute format('update public.%I set (%s) = (select %s from jsonb_populate_record(null::public.%I, $1)) '
                       'where (%s) = (select %s from jsonb_populate_record(null::public.%I, $2))',
                       h.table_name, columns, columns, h.table_name, keys, keys, h.table_name) using h.before, h.row_key;
    else
        columns := (select string_agg(quote_ident(a.attname), ', ' order by a.attnum) from pg_attribute a
                     where a.attrelid = ('public.' || h.table_name)::regclass and a.attnum > 0 and not a.attisdropped
                       and a.attgenerated = '');
        execute format('insert into public.%I (%s) select %s from jsonb_populate_record(null::public.%I, $1) '
                       'on conflict do nothing', h.table_name, columns, columns, h.table_name) using h.before;
    end if;
end
$$;

revoke all on function private.revert_history_entry(bigint) from public;
grant execute on function private.revert_history_entry(bigint) to vital_loader;

-- An undo is a load of its own in the ledger, under the policy `undo`.
alter table pipeline_loads drop constraint if exists pipeline_loads_policy_check;
alter table pipeline_loads add constraint pipeline_loads_policy_check check (policy in ('quarantine', 'strict', 'undo'));
