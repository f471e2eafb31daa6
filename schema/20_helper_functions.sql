-- 20 · Helper functions and triggers: updated_at maintenance, the tenant hierarchy (path, depth, root on insert
-- and re-parent), hierarchy queries, membership checks and usage roll-ups.
--
-- Decision: the membership functions that RLS policies call (tenant_read_allowed, tenant_write_allowed,
-- tenant_admin_allowed, content_read_allowed) are defined in 19_row_level_security.sql, which runs first;
-- is_tenant_member_or_ancestor_admin() below is the general-purpose entry point built on them.

create or replace function public.set_updated_at()
returns trigger
language plpgsql
as $$
begin
    new.updated_at := now();
    return new;
end
$$;

-- updated_at moves only when a row really changes: the loaders' upserts skip unchanged rows entirely.
do $$
declare
    t record;
begin
    for t in
        select c.table_name
        from information_schema.columns c
        join information_schema.tables tb on tb.table_schema = c.table_schema and tb.table_name = c.table_name
        where c.table_schema = 'public' and c.column_name = 'updated_at' and tb.table_type = 'BASE TABLE'
    loop
        execute format('create or replace trigger set_updated_at before update on public.%I
                        for each row execute function public.set_updated_at()',
                       t.table_name);
    end loop;
end $$;

create or replace function public.tenant_path_label(tenant_id uuid)
returns ltree
language sql immutable strict
as $$ select text2ltree(replace(tenant_id::text, '-', '_')) $$;

create or replace function public.maintain_tenant_hierarchy()
returns trigger
language plpgsql
set search_path = public, pg_temp
as $$
declare
    parent tenants%rowtype;
begin
    if new.parent_tenant_id is null then
        new.tenant_path := tenant_path_label(new.id);
        new.hierarchy_depth := 0;
        new.root_tenant_id := null;
        return new;
    end if;
    select * into parent from tenants where id = new.parent_tenant_id;
    if not found then
        raise exception 'parent tenant % does not exist', new.parent_tenant_id;
    end if;
    if tg_op = 'UPDATE' and parent.tenant_path <@ old.tenant_path then
        raise exception 'tenant % cannot move under its own descendant %', new.slug, parent.slug;
    end if;
    new.tenant_path := parent.tenant_path || tenant_path_label(new.id);
    new.hierarchy_depth := parent.hierarchy_depth + 1;
    new.root_tenant_id := coalesce(parent.root_tenant_id, parent.id);
    return new;
end
$$;

create or replace function public.cascade_tenant_hierarchy()
returns trigger
language plpgsql
set search_path = public, pg_temp
as $$
begin
    update tenants child
       set tenant_path = new.tenant_path || subpath(child.tenant_path, nlevel(old.tenant_path)),
           hierarchy_depth = new.hierarchy_depth + nlevel(child.tenant_path) - nlevel(old.tenant_path),
           root_tenant_id = coalesce(new.root_tenant_id, new.id)
     where child.tenant_path <@ old.tenant_path
       and child.id <> new.id;
    return null;
end
$$;

create or replace trigger maintain_tenant_hierarchy
    before insert or update of parent_tenant_id on tenants
    for each row execute function public.maintain_tenant_hierarchy();

create or replace trigger cascade_tenant_hierarchy
    after update of parent_tenant_id on tenants
    for each row when (old.tenant_path is distinct from new.tenant_path)
    execute function public.cascade_tenant_hierarchy();

create or replace function public.tenant_ancestors(target_tenant uuid)
returns setof tenants
language sql stable
set search_path = public, pg_temp
as $$
    select ancestor.*
    from tenants ancestor
    join tenants target on target.id = target_tenant
    where ancestor.tenant_path @> target.tenant_path and ancestor.id <> target.id
    order by ancestor.hierarchy_depth
$$;

create or replace function public.tenant_descendants(target_tenant uuid)
returns setof tenants
language sql stable
set search_path = public, pg_temp
as $$
    select descendant.*
    from tenants descendant
    join tenants target on target.id = target_tenant
    where descendant.tenant_path <@ target.tenant_path and descendant.id <> target.id
    order by descendant.tenant_path
$$;

-- "Is the current user a member of this tenant, or an owner/admin of one of its ancestors?" — the rule that
-- governs reading tenant data, under the name application code asks it by.
create or replace function public.is_tenant_member_or_ancestor_admin(target_tenant uuid)
returns boolean
language sql stable security definer
set search_path = public, pg_temp
as $$ select tenant_read_allowed(target_tenant) $$;

-- Usage roll-ups: idempotent (re-running a day or month replaces its figures).
create or replace function public.rollup_tenant_usage(usage_day date)
returns integer
language plpgsql
set search_path = public, pg_temp
as $$
declare
    written integer;
begin
    insert into tenant_usage_tracking (tenant_id, usage_date, service_code, requests, tokens_input, tokens_output, cost_usd)
    select tenant_id, usage_day, service_code, count(*), sum(tokens_input), sum(tokens_output), sum(cost_usd)
    from token_usage_messages
    where created_at >= usage_day and created_at < usage_day + 1
    group by tenant_id, service_code
    on conflict (tenant_id, usage_date, service_code) do update
       set requests = excluded.requests,
           tokens_input = excluded.tokens_input,
           tokens_output = excluded.tokens_output,
           cost_usd = excluded.cost_usd
     where (tenant_usage_tracking.requests, tenant_usage_tracking.tokens_input,
            tenant_usage_tracking.tokens_output, tenant_usage_tracking.cost_usd)
           is distinct from (excluded.requests, excluded.tokens_input, excluded.tokens_output, excluded.cost_usd);
    get diagnostics written = row_count;
    return written;
end
$$;

create or replace function public.rollup_subscription_usage(usage_month date)
returns integer
language plpgsql
set search_path = public, pg_temp
as $$
declare
    month_start constant date := date_trunc('month', usage_month)::date;
    month_end constant date := (date_trunc('month', usage_month) + interval '1 month')::date;
    written integer;
begin
    insert into subscription_usage_monthly
        (tenant_id, usage_month, tier, active_users, consultations, panel_discussions, workflow_executions,
         tokens_total, cost_usd, token_limit)
    select t.id, month_start, t.tier,
           (select count(distinct u.user_id) from token_usage_messages u
             where u.tenant_id = t.id and u.created_at >= month_start and u.created_at < month_end),
           (select count(*) from expert_consultations c
             where c.tenant_id = t.id and c.started_at >= month_start and c.started_at < month_end),
           (select count(*) from panel_discussions p
             where p.tenant_id = t.id and p.created_at >= month_start and p.created_at < month_end),
           (select count(*) from workflow_executions w
             where w.tenant_id = t.id and w.created_at >= month_start and w.created_at < month_end),
           coalesce((select sum(u.total_tokens) from token_usage_messages u
             where u.tenant_id = t.id and u.created_at >= month_start and u.created_at < month_end), 0),
           coalesce((select sum(u.cost_usd) from token_usage_messages u
             where u.tenant_id = t.id and u.created_at >= month_start and u.created_at < month_end), 0),
           t.max_tokens_per_month
    from tenants t
    where t.deleted_at is null
    on conflict (tenant_id, usage_month) do update
       set tier = excluded.tier,
           active_users = excluded.active_users,
           consultations = excluded.consultations,
           panel_discussions = excluded.panel_discussions,
           workflow_executions = excluded.workflow_executions,
           tokens_total = excluded.tokens_total,
           cost_usd = excluded.cost_usd,
           token_limit = excluded.token_limit;
    get diagnostics written = row_count;
    return written;
end
$$;
