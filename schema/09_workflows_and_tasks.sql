-- 09 · Layer 6 (workflows): workflow definitions, their steps and connections, and the task / step library.
--
-- Decision: tasks come first because workflow steps may invoke a library task.

create table if not exists tasks (
    id                 uuid primary key default uuid_generate_v4(),
    tenant_id          uuid not null references tenants(id),
    slug               varchar(150) not null,
    name               varchar(255) not null,
    description        text,
    task_type          varchar(30) not null default 'agent'
        check (task_type in ('agent', 'human', 'tool', 'review', 'approval', 'automated')),
    estimated_minutes  integer check (estimated_minutes > 0),
    requires_approval  boolean not null default false,
    visibility         visibility_level not null default 'tenant',
    is_active          boolean not null default true,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    deleted_at         timestamptz,
    constraint tasks_slug unique (tenant_id, slug)
);

create table if not exists steps (
    id              uuid primary key default uuid_generate_v4(),
    tenant_id       uuid not null references tenants(id),
    task_id         uuid not null references tasks(id) on delete cascade,
    step_order      integer not null check (step_order >= 1),
    name            varchar(255) not null,
    action_type     varchar(30) not null
        check (action_type in ('prompt', 'tool_call', 'retrieve', 'transform', 'validate', 'human_input', 'notify')),
    instructions    text,
    expected_output text,
    config          jsonb not null default '{}'::jsonb,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    constraint steps_order unique (task_id, step_order)
);

create table if not exists task_prerequisites (
    task_id              uuid not null references tasks(id) on delete cascade,
    prerequisite_task_id uuid not null references tasks(id) on delete cascade,
    tenant_id            uuid not null references tenants(id),
    is_blocking          boolean not null default true,
    created_at           timestamptz not null default now(),
    primary key (task_id, prerequisite_task_id),
    constraint task_prerequisites_not_self check (task_id <> prerequisite_task_id)
);

create table if not exists workflows (
    id                         uuid primary key default uuid_generate_v4(),
    tenant_id                  uuid not null references tenants(id),
    slug                       varchar(150) not null,
    name                       varchar(255) not null,
    description                text,
    version                    varchar(50) not null default '1.0.0',
    approval_status            approval_status not null default 'draft',
    visibility                 visibility_level not null default 'tenant',
    trigger_type               varchar(20) not null default 'manual'
        check (trigger_type in ('manual', 'scheduled', 'event', 'api')),
    is_template                boolean not null default false,
    estimated_duration_minutes integer check (estimated_duration_minutes > 0),
    config                     jsonb not null default '{}'::jsonb,
    created_by                 uuid references auth.users(id) on delete set null,
    created_at                 timestamptz not null default now(),
    updated_at                 timestamptz not null default now(),
    deleted_at                 timestamptz,
    constraint workflows_slug unique (tenant_id, slug)
);

create table if not exists workflow_step_definitions (
    id              uuid primary key default uuid_generate_v4(),
    tenant_id       uuid not null references tenants(id),
    workflow_id     uuid not null references workflows(id) on delete cascade,
    task_id         uuid references tasks(id) on delete set null,
    step_key        varchar(100) not null,
    name            varchar(255) not null,
    step_type       varchar(20) not null
        check (step_type in ('task', 'agent', 'approval', 'condition', 'parallel', 'loop', 'human_input', 'notification')),
    position        integer not null check (position >= 1),
    config          jsonb not null default '{}'::jsonb,
    timeout_seconds integer check (timeout_seconds > 0),
    max_retries     smallint not null default 0 check (max_retries between 0 and 10),
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    constraint workflow_step_definitions_key unique (workflow_id, step_key)
);

create table if not exists workflow_step_connections (
    id                   uuid primary key default uuid_generate_v4(),
    tenant_id            uuid not null references tenants(id),
    workflow_id          uuid not null references workflows(id) on delete cascade,
    from_step_id         uuid not null references workflow_step_definitions(id) on delete cascade,
    to_step_id           uuid not null references workflow_step_definitions(id) on delete cascade,
    condition_expression text,
    label                varchar(100),
    created_at           timestamptz not null default now(),
    constraint workflow_step_connections_once unique (from_step_id, to_step_id),
    constraint workflow_step_connections_not_self check (from_step_id <> to_step_id)
);

create table if not exists workflow_tasks (
    workflow_id uuid not null references workflows(id) on delete cascade,
    task_id     uuid not null references tasks(id) on delete cascade,
    tenant_id   uuid not null references tenants(id),
    position    integer not null check (position >= 1),
    is_optional boolean not null default false,
    created_at  timestamptz not null default now(),
    primary key (workflow_id, task_id)
);

create table if not exists task_agents (
    task_id    uuid not null references tasks(id) on delete cascade,
    agent_id   uuid not null references agents(id) on delete cascade,
    tenant_id  uuid not null references tenants(id),
    agent_role varchar(20) not null default 'primary'
        check (agent_role in ('primary', 'supporting', 'reviewer')),
    created_at timestamptz not null default now(),
    primary key (task_id, agent_id)
);

create table if not exists task_tools (
    task_id     uuid not null references tasks(id) on delete cascade,
    tool_id     uuid not null references tools(id) on delete cascade,
    tenant_id   uuid not null references tenants(id),
    is_required boolean not null default true,
    created_at  timestamptz not null default now(),
    primary key (task_id, tool_id)
);

create table if not exists task_skills (
    task_id           uuid not null references tasks(id) on delete cascade,
    skill_id          uuid not null references skills(id) on delete cascade,
    tenant_id         uuid not null references tenants(id),
    required_level    smallint check (required_level between 1 and 5),
    created_at        timestamptz not null default now(),
    primary key (task_id, skill_id)
);
