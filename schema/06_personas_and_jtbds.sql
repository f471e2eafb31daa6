-- 06 · Layer 5 (part 2): personas, jobs to be done, and which personas each job serves.
--
-- Decisions:
-- * personas are keyed by persona_key, jobs_to_be_done by code, both unique per tenant.
-- * A persona points at its org role (and through it department and function); the function and department
--   are kept as columns too because stewards filter on them and the role may be re-parented.
-- * opportunity_score is Ulwick's importance + max(importance − satisfaction, 0), computed by the database.

create table if not exists personas (
    id                 uuid primary key default uuid_generate_v4(),
    tenant_id          uuid not null references tenants(id),
    persona_key        varchar(100) not null,
    name               varchar(255) not null,
    title              varchar(255) not null,
    function_id        uuid references org_functions(id),
    department_id      uuid references org_departments(id),
    role_id            uuid references org_roles(id),
    seniority_level    varchar(20)
        check (seniority_level in ('entry', 'mid', 'senior', 'lead', 'head', 'executive')),
    years_experience   smallint check (years_experience between 0 and 60),
    description        text,
    goals              text[] not null default '{}',
    pain_points        text[] not null default '{}',
    motivations        text[] not null default '{}',
    tools_used         text[] not null default '{}',
    decision_authority decision_type,
    visibility         visibility_level not null default 'tenant',
    metadata           jsonb not null default '{}'::jsonb,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    deleted_at         timestamptz,
    constraint personas_key unique (tenant_id, persona_key),
    constraint personas_key_format check (persona_key ~ '^[a-z0-9]+(-[a-z0-9]+)*$')
);

create table if not exists jobs_to_be_done (
    id                uuid primary key default uuid_generate_v4(),
    tenant_id         uuid not null references tenants(id),
    code              varchar(50) not null,
    title             varchar(255) not null,
    job_statement     text not null,
    description       text,
    functional_area   functional_area_type not null,
    job_category      job_category_type not null,
    frequency         frequency_type,
    complexity        complexity_type,
    decision_type     decision_type,
    status            jtbd_status not null default 'draft',
    importance        smallint check (importance between 1 and 10),
    satisfaction      smallint check (satisfaction between 1 and 10),
    opportunity_score smallint generated always as
        (importance + greatest(importance - satisfaction, 0)) stored,
    success_criteria  text[] not null default '{}',
    visibility        visibility_level not null default 'tenant',
    metadata          jsonb not null default '{}'::jsonb,
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    deleted_at        timestamptz,
    constraint jobs_to_be_done_code unique (tenant_id, code),
    constraint jobs_to_be_done_code_format check (code ~ '^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$')
);

create table if not exists jtbd_personas (
    jtbd_id    uuid not null references jobs_to_be_done(id) on delete cascade,
    persona_id uuid not null references personas(id) on delete cascade,
    tenant_id  uuid not null references tenants(id),
    is_primary boolean not null default false,
    created_at timestamptz not null default now(),
    primary key (jtbd_id, persona_id)
);
