-- 19 · Row-level security: enabled and forced on every table, with policies derived from each table's shape.
--
-- Policy design:
-- * service_role (the pipeline's loader acts as it) may do everything, on every table.
-- * A member (tenant_members, status 'active') reads what their tenant owns; owners, admins, managers and
--   members write it; guests and viewers only read.
-- * Owners and admins of an ancestor tenant (tenant_path @> child's path) read and write the descendants'
--   rows: a solution provider administers its enterprise clients, partners and trials. Plain members of a
--   parent see nothing of a child.
-- * Shared content (tables with a `visibility` column) is also readable beyond its tenant: 'public' by every
--   signed-in user, 'organization' by members of any tenant under the same root, 'subtenant' by members of
--   descendant tenants; 'private' only by its creator and the owning tenant's owners and admins.
-- * Reference data without a tenant (industries, org_functions, services_registry, the solution × industry
--   matrix) is readable by everyone, writable by service_role only.
-- * The pipeline's ledgers (pipeline_loads, quarantined_rows) are service_role only; audit tables are read by
--   the tenant's owners and admins and written by the service only (append-only for users).
--
-- Decision: the membership functions the policies call are defined here, because a policy needs them at
-- creation time and 20_helper_functions.sql runs after this file. They are SECURITY DEFINER with a fixed
-- search_path: they read tenant_members and tenants, which are themselves under RLS.

create or replace function public.tenant_read_allowed(target_tenant uuid)
returns boolean
language sql stable security definer
set search_path = public, pg_temp
as $$
    select exists (
        select 1
        from tenant_members m
        join tenants member_tenant on member_tenant.id = m.tenant_id
        join tenants target on target.id = target_tenant
        where m.user_id = auth.uid()
          and m.status = 'active'
          and (m.tenant_id = target_tenant
               or (m.role in ('owner', 'admin') and member_tenant.tenant_path @> target.tenant_path))
    )
$$;

create or replace function public.tenant_write_allowed(target_tenant uuid)
returns boolean
language sql stable security definer
set search_path = public, pg_temp
as $$
    select exists (
        select 1
        from tenant_members m
        join tenants member_tenant on member_tenant.id = m.tenant_id
        join tenants target on target.id = target_tenant
        where m.user_id = auth.uid()
          and m.status = 'active'
          and ((m.tenant_id = target_tenant and m.role in ('owner', 'admin', 'manager', 'member'))
               or (m.role in ('owner', 'admin') and member_tenant.tenant_path @> target.tenant_path))
    )
$$;

create or replace function public.tenant_admin_allowed(target_tenant uuid)
returns boolean
language sql stable security definer
set search_path = public, pg_temp
as $$
    select exists (
        select 1
        from tenant_members m
        join tenants member_tenant on member_tenant.id = m.tenant_id
        join tenants target on target.id = target_tenant
        where m.user_id = auth.uid()
          and m.status = 'active'
          and m.role in ('owner', 'admin')
          and member_tenant.tenant_path @> target.tenant_path
    )
$$;

create or replace function public.content_read_allowed(owner_tenant uuid, visibility visibility_level, creator uuid default null)
returns boolean
language sql stable security definer
set search_path = public, pg_temp
as $$
    select case visibility
        when 'public' then auth.uid() is not null
        when 'private' then (creator is not null and creator = auth.uid()) or tenant_admin_allowed(owner_tenant)
        when 'tenant' then tenant_read_allowed(owner_tenant)
        when 'subtenant' then tenant_read_allowed(owner_tenant) or exists (
            select 1
            from tenant_members m
            join tenants member_tenant on member_tenant.id = m.tenant_id
            join tenants owner on owner.id = owner_tenant
            where m.user_id = auth.uid() and m.status = 'active'
              and owner.tenant_path @> member_tenant.tenant_path)
        when 'organization' then tenant_read_allowed(owner_tenant) or exists (
            select 1
            from tenant_members m
            join tenants member_tenant on member_tenant.id = m.tenant_id
            join tenants owner on owner.id = owner_tenant
            where m.user_id = auth.uid() and m.status = 'active'
              and coalesce(member_tenant.root_tenant_id, member_tenant.id) = coalesce(owner.root_tenant_id, owner.id))
        else false
    end
$$;

revoke all on function public.tenant_read_allowed(uuid), public.tenant_write_allowed(uuid),
    public.tenant_admin_allowed(uuid), public.content_read_allowed(uuid, visibility_level, uuid) from public;
grant execute on function public.tenant_read_allowed(uuid), public.tenant_write_allowed(uuid),
    public.tenant_admin_allowed(uuid), public.content_read_allowed(uuid, visibility_level, uuid)
    to anon, authenticated, service_role;

grant usage on schema public to anon, authenticated, service_role;
grant select, insert, update, delete on all tables in schema public to authenticated, service_role;

-- Policies are (re)created from each table's columns: a table added by a later phase file is covered the
-- next time this file is applied, and no table is left without RLS.
do $$
declare
    t record;
    has_tenant boolean;
    has_visibility boolean;
    has_creator boolean;
    read_expr text;
    special constant text[] := array['tenants', 'tenant_members', 'user_profiles', 'solutions', 'audit_log',
        'service_role_audit', 'data_retention_policies', 'pipeline_loads', 'quarantined_rows'];
    pol record;
begin
    for t in
        select c.relname as table_name
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind in ('r', 'p') and c.relname <> 'schema_migrations'
          and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
    loop
        execute format('alter table public.%I enable row level security', t.table_name);
        execute format('alter table public.%I force row level security', t.table_name);
        for pol in select policyname from pg_policies where schemaname = 'public' and tablename = t.table_name loop
            execute format('drop policy %I on public.%I', pol.policyname, t.table_name);
        end loop;
        execute format('create policy service_role_all on public.%I to service_role using (true) with check (true)',
                       t.table_name);

        if t.table_name = any(special) then
            continue;
        end if;

        select bool_or(column_name = 'tenant_id'), bool_or(column_name = 'visibility'), bool_or(column_name = 'created_by')
          into has_tenant, has_visibility, has_creator
        from information_schema.columns
        where table_schema = 'public' and table_name = t.table_name;

        if has_tenant then
            read_expr := case
                when has_visibility and has_creator then 'content_read_allowed(tenant_id, visibility, created_by)'
                when has_visibility then 'content_read_allowed(tenant_id, visibility)'
                else 'tenant_read_allowed(tenant_id)'
            end;
            execute format('create policy tenant_read on public.%I for select to authenticated using (%s)',
                           t.table_name, read_expr);
            execute format('create policy tenant_insert on public.%I for insert to authenticated with check (tenant_write_allowed(tenant_id))',
                           t.table_name);
            execute format('create policy tenant_update on public.%I for update to authenticated using (tenant_write_allowed(tenant_id)) with check (tenant_write_allowed(tenant_id))',
                           t.table_name);
            execute format('create policy tenant_delete on public.%I for delete to authenticated using (tenant_write_allowed(tenant_id))',
                           t.table_name);
        else
            execute format('create policy reference_read on public.%I for select to anon, authenticated using (true)',
                           t.table_name);
            execute format('grant select on public.%I to anon', t.table_name);
        end if;
    end loop;
end $$;

-- The tables whose shape needs its own rules.
create policy tenant_read on tenants for select to authenticated using (tenant_read_allowed(id));
create policy tenant_admin_update on tenants for update to authenticated
    using (tenant_admin_allowed(id)) with check (tenant_admin_allowed(id));

create policy member_read on tenant_members for select to authenticated
    using (user_id = auth.uid() or tenant_read_allowed(tenant_id));
create policy member_admin_insert on tenant_members for insert to authenticated
    with check (tenant_admin_allowed(tenant_id));
create policy member_admin_update on tenant_members for update to authenticated
    using (tenant_admin_allowed(tenant_id)) with check (tenant_admin_allowed(tenant_id));
create policy member_admin_delete on tenant_members for delete to authenticated
    using (tenant_admin_allowed(tenant_id));

create policy profile_own_read on user_profiles for select to authenticated using (id = auth.uid());
create policy profile_own_insert on user_profiles for insert to authenticated with check (id = auth.uid());
create policy profile_own_update on user_profiles for update to authenticated
    using (id = auth.uid()) with check (id = auth.uid());

create policy solution_read on solutions for select to authenticated
    using (content_read_allowed(owner_tenant_id, visibility, created_by));
create policy solution_insert on solutions for insert to authenticated with check (tenant_write_allowed(owner_tenant_id));
create policy solution_update on solutions for update to authenticated
    using (tenant_write_allowed(owner_tenant_id)) with check (tenant_write_allowed(owner_tenant_id));
create policy solution_delete on solutions for delete to authenticated using (tenant_write_allowed(owner_tenant_id));

create policy audit_admin_read on audit_log for select to authenticated
    using (tenant_id is not null and tenant_admin_allowed(tenant_id));
create policy service_audit_admin_read on service_role_audit for select to authenticated
    using (tenant_id is not null and tenant_admin_allowed(tenant_id));
create policy retention_read on data_retention_policies for select to authenticated
    using (tenant_id is null or tenant_read_allowed(tenant_id));
