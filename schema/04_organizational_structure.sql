-- 04 · Layer 5 (part 1): function → department → role → responsibility, and their junctions.
--
-- Decisions:
-- * org_functions follows the seed's DDL: a global taxonomy (unique name and code), no tenant.
-- * Departments, roles and responsibilities are registry rows loaded from org_structure.xlsx; they belong to a
--   tenant (the platform unless the sheet assigns another), are addressed by a code unique per tenant, and are
--   soft-deleted when they disappear from the sheet.
-- * Junctions have a composite primary key (no surrogate id) and repeat tenant_id so RLS needs no join.

create table if not exists org_functions (
    id                 uuid primary key default uuid_generate_v4(),

    name               varchar(255) not null unique,
    code               varchar(50) not null unique,
    description        text,

    parent_function_id uuid references org_functions(id),
    hierarchy_level    integer not null default 1,

    primary_industries text[],

    icon               varchar(50),
    color              varchar(7),
    display_order      integer,

    is_active          boolean not null default true,

    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),

    constraint org_functions_color_hex check (color ~ '^#[0-9A-Fa-f]{6}$'),
    constraint org_functions_level_positive check (hierarchy_level >= 1)
);

create table if not exists org_departments (
    id            uuid primary key default uuid_generate_v4(),
    tenant_id     uuid not null references tenants(id),
    function_id   uuid not null references org_functions(id),
    code          varchar(50) not null,
    name          varchar(255) not null,
    description   text,
    display_order integer,
    is_active     boolean not null default true,
    metadata      jsonb not null default '{}'::jsonb,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    deleted_at    timestamptz,
    constraint org_departments_code unique (tenant_id, code),
    constraint org_departments_code_format check (code ~ '^[A-Z0-9]+(-[A-Z0-9]+)*$')
);

create table if not exists org_roles (
    id                 uuid primary key default uuid_generate_v4(),
    tenant_id          uuid not null references tenants(id),
    department_id      uuid references org_departments(id),
    code               varchar(50) not null,
    name               varchar(255) not null,
    description        text,
    seniority_level    varchar(20)
        check (seniority_level in ('entry', 'mid', 'senior', 'lead', 'head', 'executive')),
    reports_to_role_id uuid references org_roles(id),
    is_active          boolean not null default true,
    metadata           jsonb not null default '{}'::jsonb,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    deleted_at         timestamptz,
    constraint org_roles_code unique (tenant_id, code),
    constraint org_roles_code_format check (code ~ '^[A-Z0-9]+(-[A-Z0-9]+)*$'),
    constraint org_roles_not_own_manager check (reports_to_role_id is distinct from id)
);

create table if not exists org_responsibilities (
    id          uuid primary key default uuid_generate_v4(),
    tenant_id   uuid not null references tenants(id),
    code        varchar(50) not null,
    name        varchar(255) not null,
    description text,
    category    varchar(50),
    is_active   boolean not null default true,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    deleted_at  timestamptz,
    constraint org_responsibilities_code unique (tenant_id, code),
    constraint org_responsibilities_code_format check (code ~ '^[A-Z0-9]+(-[A-Z0-9]+)*$')
);

create table if not exists function_departments (
    function_id   uuid not null references org_functions(id) on delete cascade,
    department_id uuid not null references org_departments(id) on delete cascade,
    tenant_id     uuid not null references tenants(id),
    is_primary    boolean not null default true,
    created_at    timestamptz not null default now(),
    primary key (function_id, department_id)
);

create table if not exists function_roles (
    function_id uuid not null references org_functions(id) on delete cascade,
    role_id     uuid not null references org_roles(id) on delete cascade,
    tenant_id   uuid not null references tenants(id),
    is_primary  boolean not null default true,
    created_at  timestamptz not null default now(),
    primary key (function_id, role_id)
);

create table if not exists department_roles (
    department_id uuid not null references org_departments(id) on delete cascade,
    role_id       uuid not null references org_roles(id) on delete cascade,
    tenant_id     uuid not null references tenants(id),
    is_primary    boolean not null default true,
    created_at    timestamptz not null default now(),
    primary key (department_id, role_id)
);

create table if not exists role_responsibilities (
    role_id           uuid not null references org_roles(id) on delete cascade,
    responsibility_id uuid not null references org_responsibilities(id) on delete cascade,
    tenant_id         uuid not null references tenants(id),
    priority          smallint check (priority between 1 and 5),
    created_at        timestamptz not null default now(),
    primary key (role_id, responsibility_id)
);
