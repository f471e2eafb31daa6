-- 08 · Layer 5 (part 3): business domains (top of the outcome hierarchy), strategic priorities,
-- platform capabilities and which JTBDs each capability serves.

create table if not exists domains (
    id               uuid primary key default uuid_generate_v4(),
    tenant_id        uuid not null references tenants(id),
    code             varchar(50) not null,
    name             varchar(255) not null,
    description      text,
    parent_domain_id uuid references domains(id),
    display_order    integer,
    is_active        boolean not null default true,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    deleted_at       timestamptz,
    constraint domains_code unique (tenant_id, code),
    constraint domains_not_own_parent check (parent_domain_id is distinct from id)
);

create table if not exists strategic_priorities (
    id             uuid primary key default uuid_generate_v4(),
    tenant_id      uuid not null references tenants(id),
    domain_id      uuid references domains(id) on delete set null,
    code           varchar(50) not null,
    name           varchar(255) not null,
    description    text,
    priority_level smallint not null default 3 check (priority_level between 1 and 5),
    time_horizon   varchar(10) check (time_horizon in ('short', 'medium', 'long')),
    owner_function_id uuid references org_functions(id),
    starts_on      date,
    ends_on        date,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    deleted_at     timestamptz,
    constraint strategic_priorities_code unique (tenant_id, code),
    constraint strategic_priorities_window check (ends_on is null or starts_on is null or ends_on >= starts_on)
);

create table if not exists capabilities (
    id             uuid primary key default uuid_generate_v4(),
    tenant_id      uuid not null references tenants(id),
    code           varchar(50) not null,
    name           varchar(255) not null,
    description    text,
    category       varchar(100),
    domain_id      uuid references domains(id) on delete set null,
    maturity_level smallint check (maturity_level between 1 and 5),
    visibility     visibility_level not null default 'tenant',
    is_active      boolean not null default true,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    deleted_at     timestamptz,
    constraint capabilities_code unique (tenant_id, code)
);

create table if not exists capability_jtbd_mapping (
    capability_id   uuid not null references capabilities(id) on delete cascade,
    jtbd_id         uuid not null references jobs_to_be_done(id) on delete cascade,
    tenant_id       uuid not null references tenants(id),
    relevance_score smallint check (relevance_score between 1 and 10),
    created_at      timestamptz not null default now(),
    primary key (capability_id, jtbd_id)
);
