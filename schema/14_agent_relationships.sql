-- 14 · Agent junctions: where an agent sits in the organisation (function, department, role) and what it
-- uses (skills, tools, knowledge, prompts). The registry loader keeps the organisational ones in step with
-- agents.xlsx.

create table if not exists agent_functions (
    agent_id    uuid not null references agents(id) on delete cascade,
    function_id uuid not null references org_functions(id) on delete cascade,
    tenant_id   uuid not null references tenants(id),
    is_primary  boolean not null default true,
    created_at  timestamptz not null default now(),
    primary key (agent_id, function_id)
);

create table if not exists agent_departments (
    agent_id      uuid not null references agents(id) on delete cascade,
    department_id uuid not null references org_departments(id) on delete cascade,
    tenant_id     uuid not null references tenants(id),
    is_primary    boolean not null default true,
    created_at    timestamptz not null default now(),
    primary key (agent_id, department_id)
);

create table if not exists agent_roles (
    agent_id   uuid not null references agents(id) on delete cascade,
    role_id    uuid not null references org_roles(id) on delete cascade,
    tenant_id  uuid not null references tenants(id),
    is_primary boolean not null default true,
    created_at timestamptz not null default now(),
    primary key (agent_id, role_id)
);

create table if not exists agent_skills (
    agent_id          uuid not null references agents(id) on delete cascade,
    skill_id          uuid not null references skills(id) on delete cascade,
    tenant_id         uuid not null references tenants(id),
    proficiency_level smallint not null default 3 check (proficiency_level between 1 and 5),
    created_at        timestamptz not null default now(),
    primary key (agent_id, skill_id)
);

create table if not exists agent_tools (
    agent_id    uuid not null references agents(id) on delete cascade,
    tool_id     uuid not null references tools(id) on delete cascade,
    tenant_id   uuid not null references tenants(id),
    is_enabled  boolean not null default true,
    config      jsonb not null default '{}'::jsonb,
    created_at  timestamptz not null default now(),
    primary key (agent_id, tool_id)
);

create table if not exists agent_knowledge (
    agent_id            uuid not null references agents(id) on delete cascade,
    knowledge_source_id uuid not null references knowledge_sources(id) on delete cascade,
    tenant_id           uuid not null references tenants(id),
    priority            smallint not null default 3 check (priority between 1 and 5),
    created_at          timestamptz not null default now(),
    primary key (agent_id, knowledge_source_id)
);

create table if not exists agent_prompts (
    agent_id   uuid not null references agents(id) on delete cascade,
    prompt_id  uuid not null references prompts(id) on delete cascade,
    tenant_id  uuid not null references tenants(id),
    usage_role prompt_role_type not null default 'system',
    created_at timestamptz not null default now(),
    primary key (agent_id, prompt_id)
);
