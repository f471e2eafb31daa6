-- 13 · Layer 6, service 4 (Solutions Marketplace): what each packaged solution bundles.
--
-- Decision: the junctions carry the tenant that owns the link (normally the solution's owner) so RLS needs
-- no join; display_order keeps the marketplace's ordering.

create table if not exists solution_agents (
    solution_id   uuid not null references solutions(id) on delete cascade,
    agent_id      uuid not null references agents(id) on delete cascade,
    tenant_id     uuid not null references tenants(id),
    is_core       boolean not null default true,
    display_order integer,
    created_at    timestamptz not null default now(),
    primary key (solution_id, agent_id)
);

create table if not exists solution_workflows (
    solution_id   uuid not null references solutions(id) on delete cascade,
    workflow_id   uuid not null references workflows(id) on delete cascade,
    tenant_id     uuid not null references tenants(id),
    display_order integer,
    created_at    timestamptz not null default now(),
    primary key (solution_id, workflow_id)
);

create table if not exists solution_prompts (
    solution_id   uuid not null references solutions(id) on delete cascade,
    prompt_id     uuid not null references prompts(id) on delete cascade,
    tenant_id     uuid not null references tenants(id),
    suite_id      uuid references solution_prompt_suites(id) on delete set null,
    display_order integer,
    created_at    timestamptz not null default now(),
    primary key (solution_id, prompt_id)
);

create table if not exists solution_templates (
    solution_id   uuid not null references solutions(id) on delete cascade,
    template_id   uuid not null references templates(id) on delete cascade,
    tenant_id     uuid not null references tenants(id),
    display_order integer,
    created_at    timestamptz not null default now(),
    primary key (solution_id, template_id)
);

create table if not exists solution_knowledge (
    solution_id         uuid not null references solutions(id) on delete cascade,
    knowledge_source_id uuid not null references knowledge_sources(id) on delete cascade,
    tenant_id           uuid not null references tenants(id),
    created_at          timestamptz not null default now(),
    primary key (solution_id, knowledge_source_id)
);
