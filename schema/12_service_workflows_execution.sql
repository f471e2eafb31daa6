-- 12 · Layer 7: the workflow runtime — executions, their steps, approvals, logs and task runs.

create table if not exists workflow_executions (
    id             uuid primary key default uuid_generate_v4(),
    tenant_id      uuid not null references tenants(id),
    workflow_id    uuid not null references workflows(id),
    triggered_by   uuid references auth.users(id) on delete set null,
    status         varchar(20) not null default 'pending'
        check (status in ('pending', 'running', 'paused', 'awaiting_approval', 'completed', 'failed', 'cancelled')),
    input          jsonb not null default '{}'::jsonb,
    output         jsonb,
    error          text,
    total_tokens   bigint not null default 0 check (total_tokens >= 0),
    total_cost_usd numeric(12,6) not null default 0 check (total_cost_usd >= 0),
    started_at     timestamptz,
    completed_at   timestamptz,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    constraint workflow_executions_window check (completed_at is null or started_at is null or completed_at >= started_at)
);

create table if not exists workflow_execution_steps (
    id                 uuid primary key default uuid_generate_v4(),
    tenant_id          uuid not null references tenants(id),
    execution_id       uuid not null references workflow_executions(id) on delete cascade,
    step_definition_id uuid not null references workflow_step_definitions(id),
    attempt            smallint not null default 1 check (attempt >= 1),
    status             varchar(20) not null default 'pending'
        check (status in ('pending', 'running', 'awaiting_approval', 'completed', 'failed', 'skipped', 'cancelled')),
    input              jsonb,
    output             jsonb,
    error              text,
    started_at         timestamptz,
    completed_at       timestamptz,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    constraint workflow_execution_steps_attempt unique (execution_id, step_definition_id, attempt)
);

create table if not exists workflow_approvals (
    id                uuid primary key default uuid_generate_v4(),
    tenant_id         uuid not null references tenants(id),
    execution_id      uuid not null references workflow_executions(id) on delete cascade,
    execution_step_id uuid references workflow_execution_steps(id) on delete cascade,
    requested_from    uuid references auth.users(id) on delete set null,
    decided_by        uuid references auth.users(id) on delete set null,
    status            approval_status not null default 'pending',
    comments          text,
    requested_at      timestamptz not null default now(),
    due_at            timestamptz,
    decided_at        timestamptz,
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    constraint workflow_approvals_decision check ((decided_at is null) = (decided_by is null))
);

create table if not exists workflow_logs (
    id                uuid primary key default uuid_generate_v4(),
    tenant_id         uuid not null references tenants(id),
    execution_id      uuid not null references workflow_executions(id) on delete cascade,
    execution_step_id uuid references workflow_execution_steps(id) on delete cascade,
    level             varchar(10) not null default 'info' check (level in ('debug', 'info', 'warning', 'error')),
    message           text not null,
    details           jsonb not null default '{}'::jsonb,
    logged_at         timestamptz not null default now()
);

create table if not exists task_executions (
    id                uuid primary key default uuid_generate_v4(),
    tenant_id         uuid not null references tenants(id),
    execution_step_id uuid references workflow_execution_steps(id) on delete cascade,
    task_id           uuid not null references tasks(id),
    agent_id          uuid references agents(id) on delete set null,
    status            varchar(20) not null default 'pending'
        check (status in ('pending', 'running', 'completed', 'failed', 'cancelled')),
    input             jsonb,
    output            jsonb,
    error             text,
    tokens_used       bigint not null default 0 check (tokens_used >= 0),
    cost_usd          numeric(12,6) not null default 0 check (cost_usd >= 0),
    started_at        timestamptz,
    completed_at      timestamptz,
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now()
);
