-- 22 · Tenant isolation and least privilege. Applied files are never edited, so this file supersedes the
-- policies of 19_row_level_security.sql and the hierarchy triggers of 20_helper_functions.sql.
--
-- Decisions:
-- * The functions that policies call move to the schema `private`, which the API does not expose (PostgREST
--   serves `public`); they are SECURITY DEFINER with an empty search_path and fully qualified names, and only
--   `authenticated` (whose policies call them) may execute them. `anon` executes none of them.
-- * The hierarchy and plan columns of `tenants` are the platform's: path, depth and root are recomputed from the
--   parent on every insert and update (a hand-written path is overwritten), and `authenticated` may update only
--   the tenant's profile columns. Tenants are created, re-parented and re-planned by service_role alone.
-- * A write never reaches a row its writer cannot read: update and delete policies require the select rule too.
-- * Memberships and API keys belong to their own tenant's owners and admins (an ancestor's admins administer the
--   descendant's data, not who may sign in to it). Only owners create, change or remove owner memberships.
--   `api_keys.key_hash` is readable by no API role; keys are checked by private.verify_api_key().
-- * Usage and billing records are written by the platform (service_role) and only read by the tenant.
-- * The pipeline's ledgers (schema_migrations, pipeline_loads, quarantined_rows) are out of reach of anon and
--   authenticated; audit tables are append-only for every role but their owner.
-- * The loader role `vital_loader` is not a member of service_role: its own policies and grants cover exactly
--   the tables the loads read and write. Two maintenance steps a load needs but a loader may not run itself
--   (ANALYZE of a freshly loaded table, a vector column following a new model's dimension) are definer functions
--   that do only that.

do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'vital_loader') then
        raise exception 'role vital_loader is missing: run scripts/setup, or on Supabase create it as README.md shows';
    end if;
end $$;

create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to authenticated;

-- Membership rules -------------------------------------------------------------------------------------------

-- ltree's @> on the paths' text, so that the definer functions need no extension operator (extensions live in
-- `public` here and in `extensions` on Supabase).
create or replace function private.path_contains(ancestor text, descendant text)
returns boolean
language sql immutable strict
set search_path = ''
as $$ select descendant = ancestor or pg_catalog.starts_with(descendant, ancestor || '.') $$;

-- Whether the caller is an active member of `target_tenant` in one of `own_roles`, or of an ancestor of it in one
-- of `ancestor_roles`: the one question behind reading, writing and administering a tenant's rows.
create or replace function private.tenant_role_allows(target_tenant uuid, own_roles public.tenant_role[],
                                                      ancestor_roles public.tenant_role[])
returns boolean
language sql stable security definer
set search_path = ''
as $$
    select exists (
        select 1
        from public.tenant_members m
        join public.tenants member_tenant on member_tenant.id = m.tenant_id
        join public.tenants target on target.id = target_tenant
        where m.user_id = auth.uid()
          and m.status = 'active'
          and ((m.tenant_id = target_tenant and m.role = any(own_roles))
               or (m.role = any(ancestor_roles)
                   and private.path_contains(member_tenant.tenant_path::text, target.tenant_path::text)))
    )
$$;

create or replace function private.tenant_read_allowed(target_tenant uuid)
returns boolean
language sql stable security definer
set search_path = ''
as $$ select private.tenant_role_allows(target_tenant, enum_range(null::public.tenant_role), '{owner,admin}') $$;

create or replace function private.tenant_write_allowed(target_tenant uuid)
returns boolean
language sql stable security definer
set search_path = ''
as $$ select private.tenant_role_allows(target_tenant, '{owner,admin,manager,member}', '{owner,admin}') $$;

-- Owner or admin of the tenant itself or of an ancestor.
create or replace function private.tenant_admin_allowed(target_tenant uuid)
returns boolean
language sql stable security definer
set search_path = ''
as $$ select private.tenant_role_allows(target_tenant, '{owner,admin}', '{owner,admin}') $$;

-- The caller's role in exactly this tenant (not inherited from an ancestor), if active.
create or replace function private.own_tenant_role(target_tenant uuid)
returns public.tenant_role
language sql stable security definer
set search_path = ''
as $$
    select m.role
    from public.tenant_members m
    where m.user_id = auth.uid() and m.status = 'active' and m.tenant_id = target_tenant
$$;

create or replace function private.content_read_allowed(owner_tenant uuid, visibility public.visibility_level,
                                                        creator uuid default null)
returns boolean
language sql stable security definer
set search_path = ''
as $$
    select case visibility
        when 'public' then auth.uid() is not null
        when 'private' then (creator is not null and creator = auth.uid()) or private.tenant_admin_allowed(owner_tenant)
        when 'tenant' then private.tenant_read_allowed(owner_tenant)
        when 'subtenant' then private.tenant_read_allowed(owner_tenant) or exists (
            select 1
            from public.tenant_members m
            join public.tenants member_tenant on member_tenant.id = m.tenant_id
            join public.tenants owner on owner.id = owner_tenant
            where m.user_id = auth.uid() and m.status = 'active'
              and private.path_contains(owner.tenant_path::text, member_tenant.tenant_path::text))
        when 'organization' then private.tenant_read_allowed(owner_tenant) or exists (
            select 1
            from public.tenant_members m
            join public.tenants member_tenant on member_tenant.id = m.tenant_id
            join public.tenants owner on owner.id = owner_tenant
            where m.user_id = auth.uid() and m.status = 'active'
              and coalesce(member_tenant.root_tenant_id, member_tenant.id) = coalesce(owner.root_tenant_id, owner.id))
        else false
    end
$$;

-- An API key as presented by a client: the key's id, tenant and scopes when it is valid, else no row. Keys are
-- stored as bcrypt hashes (pgcrypto's crypt, in whichever schema the extension lives); the prefix narrows the
-- search to one or a few candidates.
do $$
begin
    execute pg_catalog.format($f$
        create or replace function private.verify_api_key(presented text)
        returns table (key_id uuid, tenant_id uuid, user_id uuid, scopes text[])
        language sql stable security definer
        set search_path = ''
        as $body$
            select k.id, k.tenant_id, k.user_id, k.scopes
            from public.api_keys k
            where k.key_prefix = pg_catalog.left(presented, pg_catalog.length(k.key_prefix))
              and k.revoked_at is null
              and (k.expires_at is null or k.expires_at > pg_catalog.now())
              and k.key_hash = %1$I.crypt(presented, k.key_hash)
        $body$ $f$,
        (select extnamespace::regnamespace::text from pg_extension where extname = 'pgcrypto'));
end $$;

-- ANALYZE of a table the loader writes (non-owners may not analyze), for fresh planner statistics after a load.
create or replace function private.refresh_loaded_statistics(target regclass)
returns void
language plpgsql security definer
set search_path = ''
set default_statistics_target = 10
as $$
begin
    if not exists (select 1 from pg_catalog.pg_policy p
                   where p.polrelid = target and p.polname = 'pipeline_loader' and p.polcmd = '*') then
        raise exception '% is not a table the pipeline loads', target;
    end if;
    execute pg_catalog.format('analyze %s', target);
end
$$;

-- The vector columns follow the embedding model's dimension: a change drops the old model's vectors (a backfill
-- re-embeds them) and rebuilds the HNSW index. Returns the tables that changed.
create or replace function private.ensure_vector_dimension(dimension integer)
returns text[]
language plpgsql security definer
set search_path = ''
as $$
declare
    vector_schema constant text := (select extnamespace::regnamespace::text from pg_catalog.pg_extension
                                    where extname = 'vector');
    target record;
    changed text[] := '{}';
begin
    if dimension is null or dimension < 1 or dimension > 16000 then
        raise exception 'a vector dimension must be between 1 and 16000, not %', dimension;
    end if;
    for target in select * from (values ('knowledge_chunks', 'embedding', 'idx_knowledge_chunks_embedding_hnsw'),
                                        ('agents', 'profile_embedding', 'idx_agents_profile_embedding_hnsw'))
                               as v (table_name, column_name, index_name)
    loop
        if (select atttypmod from pg_catalog.pg_attribute
             where attrelid = ('public.' || target.table_name)::regclass and attname = target.column_name) = dimension then
            continue;
        end if;
        execute pg_catalog.format('lock table public.%I in access exclusive mode', target.table_name);
        execute pg_catalog.format('drop index if exists public.%I', target.index_name);
        if target.table_name = 'knowledge_chunks' then
            delete from public.knowledge_chunks;
            update public.knowledge_sources set status = 'pending', chunk_count = 0 where deleted_at is null;
        else
            update public.agents set profile_embedding = null, embedding_model = null, profile_sha256 = null,
                                     embedded_at = null
             where profile_embedding is not null;
        end if;
        execute pg_catalog.format('alter table public.%I alter column %I type %I.vector(%s)',
                                  target.table_name, target.column_name, vector_schema, dimension);
        execute pg_catalog.format('create index %I on public.%I using hnsw (%I %I.vector_cosine_ops)',
                                  target.index_name, target.table_name, target.column_name, vector_schema);
        changed := changed || target.table_name;
    end loop;
    return changed;
end
$$;

revoke all on all functions in schema private from public;
grant execute on function private.tenant_read_allowed(uuid), private.tenant_write_allowed(uuid),
    private.tenant_admin_allowed(uuid), private.own_tenant_role(uuid),
    private.content_read_allowed(uuid, public.visibility_level, uuid) to authenticated;
grant execute on function private.verify_api_key(text) to service_role;
grant usage on schema private to service_role, vital_loader;
grant execute on function private.refresh_loaded_statistics(regclass), private.ensure_vector_dimension(integer)
    to vital_loader;

-- The tenant hierarchy is derived, never written ----------------------------------------------------------------

create or replace function public.maintain_tenant_hierarchy()
returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
    parent record;
    label constant text := pg_catalog.replace(new.id::text, '-', '_');
begin
    if new.parent_tenant_id is null then
        new.tenant_path := label;
        new.hierarchy_depth := 0;
        new.root_tenant_id := null;
        return new;
    end if;
    select p.slug, p.tenant_path::text as path, p.hierarchy_depth, p.root_tenant_id, p.id
      into parent from public.tenants p where p.id = new.parent_tenant_id;
    if not found then
        raise exception 'parent tenant % does not exist', new.parent_tenant_id;
    end if;
    if tg_op = 'UPDATE' and private.path_contains(old.tenant_path::text, parent.path) then
        raise exception 'tenant % cannot move under its own descendant %', new.slug, parent.slug;
    end if;
    new.tenant_path := parent.path || '.' || label;
    new.hierarchy_depth := parent.hierarchy_depth + 1;
    new.root_tenant_id := coalesce(parent.root_tenant_id, parent.id);
    return new;
end
$$;

-- Children recompute from their (now updated) parent through their own before-trigger, level by level.
create or replace function public.cascade_tenant_hierarchy()
returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
    update public.tenants child set parent_tenant_id = child.parent_tenant_id where child.parent_tenant_id = new.id;
    return null;
end
$$;

drop trigger if exists maintain_tenant_hierarchy on tenants;
create trigger maintain_tenant_hierarchy
    before insert or update on tenants
    for each row execute function public.maintain_tenant_hierarchy();

drop trigger if exists cascade_tenant_hierarchy on tenants;
create trigger cascade_tenant_hierarchy
    after update on tenants
    for each row when (old.tenant_path is distinct from new.tenant_path or old.root_tenant_id is distinct from new.root_tenant_id)
    execute function public.cascade_tenant_hierarchy();

revoke all on function public.maintain_tenant_hierarchy(), public.cascade_tenant_hierarchy() from public;

-- The old entry points of 19 and 20, replaced by private.*.
create or replace function public.is_tenant_member_or_ancestor_admin(target_tenant uuid)
returns boolean
language sql stable security invoker
set search_path = ''
as $$ select private.tenant_read_allowed(target_tenant) $$;
revoke all on function public.is_tenant_member_or_ancestor_admin(uuid) from public;
grant execute on function public.is_tenant_member_or_ancestor_admin(uuid) to authenticated;

-- Privileges ------------------------------------------------------------------------------------------------

drop function if exists public.tenant_read_allowed(uuid), public.tenant_write_allowed(uuid),
    public.tenant_admin_allowed(uuid), public.content_read_allowed(uuid, visibility_level, uuid) cascade;
revoke all on function public.rollup_tenant_usage(date), public.rollup_subscription_usage(date) from public;
grant execute on function public.rollup_tenant_usage(date), public.rollup_subscription_usage(date) to service_role;

revoke all on all tables in schema public from anon, authenticated, service_role, vital_loader;
grant usage on schema public to anon, authenticated, service_role, vital_loader;

-- Policies are derived from each table's shape, as in 19, with the rules above. Every table is covered.
do $$
declare
    t record;
    pol record;
    owner_column text;
    has_visibility boolean;
    has_creator boolean;
    read_expr text;
    write_expr text;
    special constant text[] := array['tenants', 'tenant_members', 'user_profiles', 'api_keys', 'audit_log',
        'service_role_audit', 'data_retention_policies', 'pipeline_loads', 'quarantined_rows'];
    platform_written constant text[] := array['tenant_usage_tracking', 'subscription_usage_monthly',
        'token_usage_messages', 'token_usage_sessions', 'token_usage_consultations', 'cost_allocation'];
begin
    for t in
        select c.relname as table_name
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind in ('r', 'p')
          and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
    loop
        execute format('alter table public.%I enable row level security', t.table_name);
        for pol in select policyname from pg_policies where schemaname = 'public' and tablename = t.table_name loop
            execute format('drop policy %I on public.%I', pol.policyname, t.table_name);
        end loop;
        if t.table_name = 'schema_migrations' then
            continue;  -- the owner's alone: RLS on (not forced), no policy, no grant
        end if;
        execute format('alter table public.%I force row level security', t.table_name);
        execute format('create policy service_role_all on public.%I to service_role using (true) with check (true)',
                       t.table_name);
        execute format('grant select, insert, update, delete on public.%I to service_role', t.table_name);

        if t.table_name = any(special) then
            continue;
        end if;

        select max(column_name) filter (where column_name in ('tenant_id', 'owner_tenant_id')),
               bool_or(column_name = 'visibility'), bool_or(column_name = 'created_by')
          into owner_column, has_visibility, has_creator
        from information_schema.columns
        where table_schema = 'public' and table_name = t.table_name;

        if owner_column is null then
            execute format('create policy reference_read on public.%I for select to anon, authenticated using (true)',
                           t.table_name);
            execute format('grant select on public.%I to anon, authenticated', t.table_name);
            continue;
        end if;

        read_expr := case
            when has_visibility and has_creator then format('private.content_read_allowed(%I, visibility, created_by)', owner_column)
            when has_visibility then format('private.content_read_allowed(%I, visibility)', owner_column)
            else format('private.tenant_read_allowed(%I)', owner_column)
        end;
        write_expr := format('private.tenant_write_allowed(%I)', owner_column);
        execute format('create policy tenant_read on public.%I for select to authenticated using (%s)',
                       t.table_name, read_expr);
        execute format('grant select on public.%I to authenticated', t.table_name);
        if t.table_name = any(platform_written) then
            continue;
        end if;
        execute format('create policy tenant_insert on public.%I for insert to authenticated with check (%s)',
                       t.table_name, write_expr);
        execute format('create policy tenant_update on public.%I for update to authenticated using (%s and %s) with check (%s)',
                       t.table_name, read_expr, write_expr, write_expr);
        execute format('create policy tenant_delete on public.%I for delete to authenticated using (%s and %s)',
                       t.table_name, read_expr, write_expr);
        execute format('grant insert, update, delete on public.%I to authenticated', t.table_name);
    end loop;
end $$;

-- tenants: members read; owners and admins (of it or an ancestor) edit the profile columns only.
create policy tenant_read on tenants for select to authenticated using (private.tenant_read_allowed(id));
create policy tenant_admin_update on tenants for update to authenticated
    using (private.tenant_admin_allowed(id)) with check (private.tenant_admin_allowed(id));
grant select on tenants to authenticated;
grant update (name, domain, contact_email, contact_name, billing_email, settings, data_residency,
              compliance_requirements) on tenants to authenticated;

-- tenant_members: co-members read; the tenant's own owners and admins manage; owner rows are the owners'.
create policy member_read on tenant_members for select to authenticated
    using (user_id = auth.uid() or private.tenant_read_allowed(tenant_id));
create policy member_admin_insert on tenant_members for insert to authenticated
    with check (private.own_tenant_role(tenant_id) = 'owner'
                or (private.own_tenant_role(tenant_id) = 'admin' and role <> 'owner'));
create policy member_admin_update on tenant_members for update to authenticated
    using (private.own_tenant_role(tenant_id) = 'owner'
           or (private.own_tenant_role(tenant_id) = 'admin' and role <> 'owner'))
    with check (private.own_tenant_role(tenant_id) = 'owner'
                or (private.own_tenant_role(tenant_id) = 'admin' and role <> 'owner'));
create policy member_admin_delete on tenant_members for delete to authenticated
    using (private.own_tenant_role(tenant_id) = 'owner'
           or (private.own_tenant_role(tenant_id) = 'admin' and role <> 'owner'));
grant select, delete on tenant_members to authenticated;
grant insert (tenant_id, user_id, role, status, invited_by, invited_at, joined_at) on tenant_members to authenticated;
grant update (role, status) on tenant_members to authenticated;

-- api_keys: the tenant's own owners and admins; the hash is write-only.
create policy api_key_admin_read on api_keys for select to authenticated
    using (private.own_tenant_role(tenant_id) in ('owner', 'admin'));
create policy api_key_admin_insert on api_keys for insert to authenticated
    with check (private.own_tenant_role(tenant_id) in ('owner', 'admin'));
create policy api_key_admin_update on api_keys for update to authenticated
    using (private.own_tenant_role(tenant_id) in ('owner', 'admin'))
    with check (private.own_tenant_role(tenant_id) in ('owner', 'admin'));
create policy api_key_admin_delete on api_keys for delete to authenticated
    using (private.own_tenant_role(tenant_id) in ('owner', 'admin'));
grant select (id, tenant_id, user_id, name, key_prefix, scopes, rate_limit_per_minute, last_used_at, expires_at,
              revoked_at, created_at, updated_at) on api_keys to authenticated;
grant insert (tenant_id, user_id, name, key_prefix, key_hash, scopes, rate_limit_per_minute, expires_at)
    on api_keys to authenticated;
grant update (name, scopes, rate_limit_per_minute, expires_at, revoked_at) on api_keys to authenticated;
grant delete on api_keys to authenticated;
revoke select on api_keys from service_role;
grant select (id, tenant_id, user_id, name, key_prefix, scopes, rate_limit_per_minute, last_used_at, expires_at,
              revoked_at, created_at, updated_at) on api_keys to service_role;

-- user_profiles: one's own.
create policy profile_own_read on user_profiles for select to authenticated using (id = auth.uid());
create policy profile_own_insert on user_profiles for insert to authenticated with check (id = auth.uid());
create policy profile_own_update on user_profiles for update to authenticated
    using (id = auth.uid()) with check (id = auth.uid());
grant select, insert, update on user_profiles to authenticated;

-- Audit: the tenant's owners and admins read; rows are only ever added.
drop policy service_role_all on audit_log;
drop policy service_role_all on service_role_audit;
create policy service_role_read on audit_log for select to service_role using (true);
create policy service_role_append on audit_log for insert to service_role with check (true);
create policy service_role_read on service_role_audit for select to service_role using (true);
create policy service_role_append on service_role_audit for insert to service_role with check (true);
revoke update, delete on audit_log, service_role_audit from service_role;
create policy audit_admin_read on audit_log for select to authenticated
    using (tenant_id is not null and private.tenant_admin_allowed(tenant_id));
create policy service_audit_admin_read on service_role_audit for select to authenticated
    using (tenant_id is not null and private.tenant_admin_allowed(tenant_id));
grant select on audit_log, service_role_audit to authenticated;

create policy retention_read on data_retention_policies for select to authenticated
    using (tenant_id is null or private.tenant_read_allowed(tenant_id));
grant select on data_retention_policies to authenticated;

-- The loader: what the registry and knowledge loads read and write, nothing else --------------------------------

do $$
declare
    t text;
    loaded constant text[] := array['org_functions', 'org_departments', 'org_roles', 'org_responsibilities',
        'function_departments', 'function_roles', 'department_roles', 'role_responsibilities', 'personas', 'agents',
        'agent_functions', 'agent_departments', 'agent_roles', 'jobs_to_be_done', 'jtbd_personas',
        'solution_industry_matrix', 'knowledge_sources', 'knowledge_chunks', 'quarantined_rows'];
    linked constant text[] := array['function_departments', 'function_roles', 'department_roles',
        'role_responsibilities', 'agent_functions', 'agent_departments', 'agent_roles', 'jtbd_personas',
        'knowledge_sources', 'knowledge_chunks'];
    looked_up constant text[] := array['tenants', 'industries', 'solutions'];
begin
    foreach t in array loaded loop
        execute format('create policy pipeline_loader on public.%I to vital_loader using (true) with check (true)', t);
        execute format('grant select, insert, update on public.%I to vital_loader', t);
    end loop;
    foreach t in array linked loop
        execute format('grant delete on public.%I to vital_loader', t);
    end loop;
    foreach t in array looked_up loop
        execute format('create policy pipeline_loader_read on public.%I for select to vital_loader using (true)', t);
        execute format('grant select on public.%I to vital_loader', t);
    end loop;
end $$;

-- Its ledger entries and audit entries are appended; a load reads back only its own ledger rows.
create policy pipeline_loader_append on pipeline_loads for insert to vital_loader with check (true);
create policy pipeline_loader_read on pipeline_loads for select to vital_loader using (true);
grant select, insert on pipeline_loads to vital_loader;
create policy pipeline_loader_append on audit_log for insert to vital_loader with check (source = 'pipeline');
grant insert on audit_log to vital_loader;
