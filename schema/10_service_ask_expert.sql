-- 10 · Layer 6, service 1 (Ask Expert, 1:1 consultations), and the registry of the four services.
--
-- Decision: services_registry (seed DDL) lives in the first service file because every service file after it
-- and the usage tables refer to services by its service_code.

create table if not exists services_registry (
    id                         uuid primary key default uuid_generate_v4(),

    service_name               varchar(100) not null unique,
    service_code               varchar(50) not null unique,
    display_name               varchar(255) not null,
    description                text,

    service_category           varchar(50) not null,

    is_enabled                 boolean not null default true,
    requires_subscription_tier tenant_tier,

    default_config             jsonb,
    rate_limits                jsonb,

    base_cost_per_use          decimal(10,4),
    token_cost_multiplier      decimal(5,2),

    created_at                 timestamptz not null default now(),
    updated_at                 timestamptz not null default now(),

    constraint services_registry_category check (service_category in ('conversation', 'execution', 'marketplace'))
);

create table if not exists expert_consultations (
    id                  uuid primary key default uuid_generate_v4(),
    tenant_id           uuid not null references tenants(id),
    user_id             uuid not null references auth.users(id),
    agent_id            uuid not null references agents(id),
    title               varchar(500),
    mode                conversation_mode not null default 'expert_consultation',
    status              varchar(20) not null default 'active'
        check (status in ('active', 'paused', 'completed', 'archived')),
    data_classification data_classification not null default 'confidential',
    context             jsonb not null default '{}'::jsonb,
    message_count       integer not null default 0 check (message_count >= 0),
    total_tokens        bigint not null default 0 check (total_tokens >= 0),
    total_cost_usd      numeric(12,6) not null default 0 check (total_cost_usd >= 0),
    started_at          timestamptz not null default now(),
    ended_at            timestamptz,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    deleted_at          timestamptz,
    constraint expert_consultations_window check (ended_at is null or ended_at >= started_at)
);

create table if not exists expert_messages (
    id              uuid primary key default uuid_generate_v4(),
    tenant_id       uuid not null references tenants(id),
    consultation_id uuid not null references expert_consultations(id) on delete cascade,
    sequence_number integer not null check (sequence_number >= 1),
    role            message_role not null,
    agent_id        uuid references agents(id),
    content         text not null,
    model           varchar(100),
    tokens_input    integer not null default 0 check (tokens_input >= 0),
    tokens_output   integer not null default 0 check (tokens_output >= 0),
    latency_ms      integer check (latency_ms >= 0),
    citations       jsonb not null default '[]'::jsonb,
    created_at      timestamptz not null default now(),
    constraint expert_messages_order unique (consultation_id, sequence_number)
);

create table if not exists consultation_sessions (
    id              uuid primary key default uuid_generate_v4(),
    tenant_id       uuid not null references tenants(id),
    consultation_id uuid not null references expert_consultations(id) on delete cascade,
    user_id         uuid not null references auth.users(id),
    started_at      timestamptz not null default now(),
    ended_at        timestamptz,
    message_count   integer not null default 0 check (message_count >= 0),
    tokens_used     bigint not null default 0 check (tokens_used >= 0),
    client_info     jsonb not null default '{}'::jsonb,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    constraint consultation_sessions_window check (ended_at is null or ended_at >= started_at)
);
