-- 16 · Layer 9 (cost): token usage per message, session and consultation, monthly subscription usage,
-- per-tenant usage tracking and cost allocation.
--
-- Decision: total_tokens columns are generated from input + output so they can never disagree.

create table if not exists token_usage_messages (
    id                uuid primary key default uuid_generate_v4(),
    tenant_id         uuid not null references tenants(id),
    user_id           uuid references auth.users(id) on delete set null,
    agent_id          uuid references agents(id) on delete set null,
    service_code      varchar(50) not null references services_registry(service_code),
    expert_message_id uuid references expert_messages(id) on delete cascade,
    panel_message_id  uuid references panel_messages(id) on delete cascade,
    model             varchar(100) not null,
    tokens_input      integer not null default 0 check (tokens_input >= 0),
    tokens_output     integer not null default 0 check (tokens_output >= 0),
    total_tokens      integer generated always as (tokens_input + tokens_output) stored,
    cost_usd          numeric(12,6) not null default 0 check (cost_usd >= 0),
    created_at        timestamptz not null default now(),
    constraint token_usage_messages_one_message check (num_nonnulls(expert_message_id, panel_message_id) <= 1)
);

create table if not exists token_usage_sessions (
    id            uuid primary key default uuid_generate_v4(),
    tenant_id     uuid not null references tenants(id),
    session_id    uuid not null unique references consultation_sessions(id) on delete cascade,
    message_count integer not null default 0 check (message_count >= 0),
    tokens_input  bigint not null default 0 check (tokens_input >= 0),
    tokens_output bigint not null default 0 check (tokens_output >= 0),
    total_tokens  bigint generated always as (tokens_input + tokens_output) stored,
    cost_usd      numeric(12,6) not null default 0 check (cost_usd >= 0),
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);

create table if not exists token_usage_consultations (
    id              uuid primary key default uuid_generate_v4(),
    tenant_id       uuid not null references tenants(id),
    consultation_id uuid not null unique references expert_consultations(id) on delete cascade,
    message_count   integer not null default 0 check (message_count >= 0),
    tokens_input    bigint not null default 0 check (tokens_input >= 0),
    tokens_output   bigint not null default 0 check (tokens_output >= 0),
    total_tokens    bigint generated always as (tokens_input + tokens_output) stored,
    cost_usd        numeric(12,6) not null default 0 check (cost_usd >= 0),
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now()
);

create table if not exists tenant_usage_tracking (
    id            uuid primary key default uuid_generate_v4(),
    tenant_id     uuid not null references tenants(id) on delete cascade,
    usage_date    date not null,
    service_code  varchar(50) not null references services_registry(service_code),
    requests      integer not null default 0 check (requests >= 0),
    tokens_input  bigint not null default 0 check (tokens_input >= 0),
    tokens_output bigint not null default 0 check (tokens_output >= 0),
    cost_usd      numeric(12,6) not null default 0 check (cost_usd >= 0),
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    constraint tenant_usage_tracking_day unique (tenant_id, usage_date, service_code)
);

create table if not exists subscription_usage_monthly (
    id                   uuid primary key default uuid_generate_v4(),
    tenant_id            uuid not null references tenants(id) on delete cascade,
    usage_month          date not null check (usage_month = date_trunc('month', usage_month)::date),
    tier                 tenant_tier not null,
    active_users         integer not null default 0 check (active_users >= 0),
    consultations        integer not null default 0 check (consultations >= 0),
    panel_discussions    integer not null default 0 check (panel_discussions >= 0),
    workflow_executions  integer not null default 0 check (workflow_executions >= 0),
    tokens_total         bigint not null default 0 check (tokens_total >= 0),
    cost_usd             numeric(14,6) not null default 0 check (cost_usd >= 0),
    token_limit          bigint,
    overage_tokens       bigint generated always as (greatest(tokens_total - coalesce(token_limit, tokens_total), 0)) stored,
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now(),
    constraint subscription_usage_monthly_month unique (tenant_id, usage_month)
);

create table if not exists cost_allocation (
    id                uuid primary key default uuid_generate_v4(),
    tenant_id         uuid not null references tenants(id) on delete cascade,
    period_start      date not null,
    period_end        date not null,
    user_id           uuid references auth.users(id) on delete set null,
    agent_id          uuid references agents(id) on delete set null,
    service_code      varchar(50) references services_registry(service_code),
    cost_center       varchar(100),
    tokens            bigint not null default 0 check (tokens >= 0),
    cost_usd          numeric(14,6) not null default 0 check (cost_usd >= 0),
    allocation_method varchar(20) not null default 'direct'
        check (allocation_method in ('direct', 'proportional', 'fixed')),
    created_at        timestamptz not null default now(),
    constraint cost_allocation_period check (period_end >= period_start)
);
