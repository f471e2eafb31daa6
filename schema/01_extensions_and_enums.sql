-- 01 · Extensions, Supabase compatibility and the 20 enums.
--
-- Decisions:
-- * The Supabase pieces (auth schema, auth.users, auth.uid(), auth.jwt(), auth.role(), the API roles) are
--   created only where absent, so this file runs unchanged on a Supabase project. On plain PostgreSQL the
--   roles anon / authenticated / service_role are created by scripts/setup (creating roles needs a
--   privilege the schema owner does not have); this file checks they exist.
-- * Enum labels are exactly the seed's, in its order. An existing enum gains missing labels, never loses any.

create extension if not exists ltree;
create extension if not exists vector;
create extension if not exists pgcrypto;
create extension if not exists "uuid-ossp";

do $$
declare
    missing text;
begin
    select string_agg(r, ', ') into missing
    from unnest(array['anon', 'authenticated', 'service_role']) as r
    where not exists (select 1 from pg_roles where rolname = r);
    if missing is not null then
        raise exception 'roles % are missing: run scripts/setup as a superuser (or use a Supabase project, which has them)', missing;
    end if;
end $$;

create schema if not exists auth;

create table if not exists auth.users (
    id                 uuid primary key default gen_random_uuid(),
    email              varchar(255) unique,
    raw_user_meta_data jsonb not null default '{}'::jsonb,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now()
);

do $$
begin
    if to_regprocedure('auth.jwt()') is null then
        create function auth.jwt() returns jsonb
            language sql stable
            as $f$
                select coalesce(
                    nullif(current_setting('request.jwt.claims', true), ''),
                    '{}'
                )::jsonb
            $f$;
    end if;
    if to_regprocedure('auth.uid()') is null then
        create function auth.uid() returns uuid
            language sql stable
            as $f$
                select nullif(
                    coalesce(
                        current_setting('request.jwt.claim.sub', true),
                        nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
                    ),
                    ''
                )::uuid
            $f$;
    end if;
    if to_regprocedure('auth.role()') is null then
        create function auth.role() returns text
            language sql stable
            as $f$
                select coalesce(
                    current_setting('request.jwt.claim.role', true),
                    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'
                )
            $f$;
    end if;
end $$;

grant usage on schema auth to anon, authenticated, service_role;

-- One helper keeps the 20 enum definitions declarative and re-runnable.
create or replace function pg_temp.ensure_enum(type_name text, labels text[])
returns void language plpgsql as $$
declare
    label text;
begin
    if to_regtype('public.' || quote_ident(type_name)) is null then
        execute format('create type public.%I as enum (%s)', type_name,
            (select string_agg(quote_literal(l), ', ' order by i) from unnest(labels) with ordinality as t(l, i)));
    else
        foreach label in array labels loop
            execute format('alter type public.%I add value if not exists %L', type_name, label);
        end loop;
    end if;
end $$;

-- Agent-related (5)
select pg_temp.ensure_enum('agent_status', array['development', 'testing', 'active', 'maintenance', 'deprecated', 'archived']);
select pg_temp.ensure_enum('agent_type', array['specialist', 'orchestrator', 'synthesizer', 'validator', 'facilitator', 'analyst', 'researcher', 'strategist']);
select pg_temp.ensure_enum('validation_status', array['pending', 'in_review', 'approved', 'rejected', 'requires_update']);
select pg_temp.ensure_enum('domain_expertise', array['medical', 'regulatory', 'legal', 'financial', 'business', 'technical', 'commercial', 'market_access', 'clinical', 'manufacturing', 'quality', 'research', 'general']);
select pg_temp.ensure_enum('data_classification', array['public', 'internal', 'confidential', 'restricted', 'phi']);

-- JTBD-related (6)
select pg_temp.ensure_enum('functional_area_type', array['Commercial', 'Medical Affairs', 'Market Access', 'Clinical', 'Regulatory', 'R&D', 'Manufacturing', 'Quality', 'Operations', 'IT/Digital', 'Legal', 'Finance', 'HR', 'Business Development']);
select pg_temp.ensure_enum('job_category_type', array['strategic', 'operational', 'tactical', 'administrative', 'analytical', 'collaborative', 'creative', 'technical']);
select pg_temp.ensure_enum('frequency_type', array['daily', 'weekly', 'monthly', 'quarterly', 'yearly', 'as_needed']);
select pg_temp.ensure_enum('complexity_type', array['simple', 'moderate', 'complex', 'expert']);
select pg_temp.ensure_enum('decision_type', array['routine', 'tactical', 'strategic', 'critical']);
select pg_temp.ensure_enum('jtbd_status', array['draft', 'active', 'deprecated', 'archived']);

-- Tenant-related (4)
select pg_temp.ensure_enum('tenant_status', array['trial', 'active', 'suspended', 'cancelled', 'churned']);
select pg_temp.ensure_enum('tenant_tier', array['free', 'starter', 'professional', 'enterprise', 'enterprise_plus']);
select pg_temp.ensure_enum('tenant_role', array['owner', 'admin', 'manager', 'member', 'guest', 'viewer']);
select pg_temp.ensure_enum('tenant_level', array['platform', 'solution_provider', 'enterprise_client', 'partner_org', 'trial_tenant']);

-- Content-related (3)
select pg_temp.ensure_enum('prompt_role_type', array['system', 'context', 'instruction', 'example', 'panel_orchestration', 'analysis', 'synthesis']);
select pg_temp.ensure_enum('visibility_level', array['private', 'tenant', 'subtenant', 'organization', 'public']);
select pg_temp.ensure_enum('approval_status', array['draft', 'pending', 'in_review', 'approved', 'rejected']);

-- Conversation-related (2)
select pg_temp.ensure_enum('conversation_mode', array['expert_consultation', 'panel_discussion', 'ask_panel']);
select pg_temp.ensure_enum('message_role', array['user', 'assistant', 'system', 'agent', 'panel_moderator', 'facilitator']);
