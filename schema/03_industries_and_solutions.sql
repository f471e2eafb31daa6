-- 03 · Layer 3: industries, solutions and which solutions fit which industries.
--
-- Decisions:
-- * solutions and solution_industry_matrix follow the seed's DDL; solutions also gets a unique slug per owner
--   (the marketplace addresses solutions by slug) and a slug format check.
-- * industries carries a stable `code` (the spelling the seed uses in org_functions.primary_industries,
--   e.g. 'pharmaceuticals') and the matrix's short column label (`short_name`, e.g. 'Phrm').

create table if not exists industries (
    id            uuid primary key default uuid_generate_v4(),
    code          varchar(50) not null unique,
    name          varchar(255) not null unique,
    short_name    varchar(20) not null unique,
    description   text,
    display_order integer,
    is_active     boolean not null default true,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    constraint industries_code_format check (code ~ '^[a-z][a-z0-9_]*$')
);

create table if not exists solutions (
    id                     uuid primary key default uuid_generate_v4(),
    owner_tenant_id        uuid not null references tenants(id),

    name                   varchar(255) not null,
    slug                   varchar(100) not null,
    description            text not null,
    code                   varchar(50),

    category               varchar(100),
    subcategory            varchar(100),
    solution_type          varchar(50),

    price_model            varchar(50),
    base_price_monthly     decimal(10,2),
    price_per_user         decimal(10,2),
    enterprise_pricing     jsonb,

    short_description      text,
    long_description       text,
    features               jsonb[],
    benefits               text[],
    use_cases              text[],

    icon_url               text,
    banner_url             text,
    demo_video_url         text,
    screenshots            text[],

    is_published           boolean not null default false,
    is_featured            boolean not null default false,
    is_marketplace_visible boolean not null default true,
    marketplace_tier       varchar(50),

    installation_count     integer not null default 0,
    avg_rating             decimal(3,2),
    total_reviews          integer not null default 0,

    visibility             visibility_level not null default 'tenant',

    version                varchar(50) not null default '1.0.0',
    changelog              text,

    tags                   text[],
    keywords               text[],

    created_by             uuid references user_profiles(id),
    created_at             timestamptz not null default now(),
    updated_at             timestamptz not null default now(),
    deleted_at             timestamptz,

    constraint unique_solution_code unique (owner_tenant_id, code),
    constraint unique_solution_slug unique (owner_tenant_id, slug),
    constraint solutions_slug_format check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    constraint solutions_solution_type check (solution_type in ('packaged', 'custom', 'hybrid')),
    constraint solutions_price_model check (price_model in ('subscription', 'usage', 'one_time')),
    constraint solutions_marketplace_tier check (marketplace_tier in ('free', 'standard', 'premium')),
    constraint solutions_rating_range check (avg_rating between 0 and 5),
    constraint solutions_prices_non_negative check (base_price_monthly >= 0 and price_per_user >= 0)
);

create table if not exists solution_industry_matrix (
    id                        uuid primary key default uuid_generate_v4(),

    solution_id               uuid not null references solutions(id) on delete cascade,
    industry_id               uuid not null references industries(id) on delete cascade,

    is_available              boolean not null default true,
    is_recommended            boolean not null default false,
    fit_score                 integer,

    industry_specific_config  jsonb,
    industry_specific_prompts uuid[],

    implementation_notes      text,
    success_stories           text[],

    created_at                timestamptz not null default now(),
    updated_at                timestamptz not null default now(),

    constraint unique_solution_industry unique (solution_id, industry_id),
    constraint valid_fit_score check (fit_score between 1 and 10)
);

create table if not exists solution_installations (
    id               uuid primary key default uuid_generate_v4(),
    tenant_id        uuid not null references tenants(id) on delete cascade,
    solution_id      uuid not null references solutions(id) on delete cascade,
    industry_id      uuid references industries(id),
    installed_by     uuid references auth.users(id) on delete set null,
    status           varchar(20) not null default 'active'
        check (status in ('pending', 'active', 'suspended', 'uninstalled')),
    installed_version varchar(50) not null default '1.0.0',
    configuration    jsonb not null default '{}'::jsonb,
    installed_at     timestamptz not null default now(),
    uninstalled_at   timestamptz,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    constraint solution_installations_once unique (tenant_id, solution_id),
    constraint solution_installations_window check (uninstalled_at is null or uninstalled_at >= installed_at)
);

create table if not exists solution_prompt_suites (
    id          uuid primary key default uuid_generate_v4(),
    tenant_id   uuid not null references tenants(id) on delete cascade,
    solution_id uuid not null references solutions(id) on delete cascade,
    slug        varchar(100) not null,
    name        varchar(255) not null,
    description text,
    visibility  visibility_level not null default 'tenant',
    version     varchar(50) not null default '1.0.0',
    is_active   boolean not null default true,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    deleted_at  timestamptz,
    constraint solution_prompt_suites_slug unique (solution_id, slug)
);
