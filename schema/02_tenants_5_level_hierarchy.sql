-- 02 · Layer 1 (identity) and Layer 2 (the 5-level tenant hierarchy).
--
-- Decisions:
-- * The seed gives tenant_level both as an integer and as an enum; the detailed structure wins: the enum
--   tenant_level, whose position (0 = platform … 4 = trial_tenant) must equal hierarchy_depth.
-- * The seed's example tenant rows omit contact_email / contact_name, which it declares NOT NULL; the
--   columns stay NOT NULL and 21_seed_data.sql supplies them.
-- * tenant_path labels are the tenant id with '-' replaced by '_', as in the seed; 20_helper_functions.sql
--   maintains path, depth and root on insert and re-parent.
-- * user_profiles, tenant_members and api_keys (Layer 1) live here because they reference tenants.

create table if not exists tenants (
    id                          uuid primary key default uuid_generate_v4(),

    parent_tenant_id            uuid references tenants(id),
    root_tenant_id              uuid references tenants(id),
    tenant_level                tenant_level not null,
    tenant_path                 ltree,
    hierarchy_depth             integer not null default 0,

    name                        varchar(255) not null,
    slug                        varchar(100) not null unique,
    domain                      varchar(255),

    contact_email               varchar(255) not null,
    contact_name                varchar(255) not null,
    billing_email               varchar(255),

    tier                        tenant_tier not null default 'free',
    status                      tenant_status not null default 'trial',

    max_users                   integer not null default 5,
    max_agents                  integer not null default 10,
    max_storage_gb              integer not null default 10,
    max_consultations_per_month integer,
    max_tokens_per_month        bigint,

    current_users               integer not null default 0,
    current_agents              integer not null default 0,
    current_storage_gb          numeric not null default 0,

    trial_ends_at               timestamptz,
    subscription_starts_at      timestamptz,
    subscription_ends_at        timestamptz,

    features                    jsonb not null default '{}'::jsonb,
    settings                    jsonb not null default '{}'::jsonb,
    metadata                    jsonb not null default '{}'::jsonb,

    data_residency              varchar(50),
    compliance_requirements     text[],

    created_at                  timestamptz not null default now(),
    created_by                  uuid references auth.users(id),
    updated_at                  timestamptz not null default now(),
    deleted_at                  timestamptz,

    constraint tenants_slug_format check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    constraint tenants_depth_matches_level
        check (hierarchy_depth = array_position(enum_range(null::tenant_level), tenant_level) - 1),
    constraint tenants_platform_has_no_parent
        check ((tenant_level = 'platform') = (parent_tenant_id is null)),
    constraint tenants_not_own_parent check (parent_tenant_id is distinct from id),
    constraint tenants_limits_positive
        check (max_users >= 0 and max_agents >= 0 and max_storage_gb >= 0
               and current_users >= 0 and current_agents >= 0 and current_storage_gb >= 0),
    constraint tenants_subscription_window
        check (subscription_ends_at is null or subscription_starts_at is null
               or subscription_ends_at >= subscription_starts_at)
);

create table if not exists tenant_organizations (
    id                   uuid primary key default uuid_generate_v4(),
    tenant_id            uuid not null unique references tenants(id) on delete cascade,
    legal_name           varchar(255) not null,
    organization_type    varchar(50) not null default 'pharma'
        check (organization_type in ('pharma', 'biotech', 'medtech', 'payer', 'cro', 'consultancy', 'digital_health', 'agency', 'other')),
    headquarters_country char(2),
    employee_band        varchar(20)
        check (employee_band in ('1-50', '51-250', '251-1000', '1001-10000', '10000+')),
    website              text,
    therapeutic_areas    text[] not null default '{}',
    regulatory_regions   text[] not null default '{}',
    metadata             jsonb not null default '{}'::jsonb,
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now(),
    deleted_at           timestamptz
);

create table if not exists user_profiles (
    id                uuid primary key references auth.users(id) on delete cascade,
    email             varchar(255) not null,
    full_name         varchar(255),
    display_name      varchar(100),
    job_title         varchar(255),
    avatar_url        text,
    default_tenant_id uuid references tenants(id) on delete set null,
    timezone          varchar(64) not null default 'UTC',
    locale            varchar(16) not null default 'en',
    preferences       jsonb not null default '{}'::jsonb,
    last_seen_at      timestamptz,
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    deleted_at        timestamptz,
    constraint user_profiles_email_format check (email ~* '^[^@\s]+@[^@\s]+\.[^@\s]+$')
);

create table if not exists tenant_members (
    id          uuid primary key default uuid_generate_v4(),
    tenant_id   uuid not null references tenants(id) on delete cascade,
    user_id     uuid not null references auth.users(id) on delete cascade,
    role        tenant_role not null default 'member',
    status      varchar(20) not null default 'active'
        check (status in ('invited', 'active', 'suspended', 'removed')),
    invited_by  uuid references auth.users(id) on delete set null,
    invited_at  timestamptz,
    joined_at   timestamptz default now(),
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    constraint tenant_members_one_membership unique (tenant_id, user_id)
);

create table if not exists api_keys (
    id           uuid primary key default uuid_generate_v4(),
    tenant_id    uuid not null references tenants(id) on delete cascade,
    user_id      uuid references auth.users(id) on delete set null,
    name         varchar(100) not null,
    key_prefix   varchar(16) not null,
    key_hash     text not null unique,
    scopes       text[] not null default '{}',
    rate_limit_per_minute integer check (rate_limit_per_minute > 0),
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now(),
    constraint api_keys_name_per_tenant unique (tenant_id, name)
);
