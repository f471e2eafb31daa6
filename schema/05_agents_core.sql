-- 05 · Layer 4: the agents registry (254 AI consultants imported from agents.xlsx).
--
-- Decisions:
-- * Natural key (tenant_id, slug); ids are uuid5 of the slug, assigned by the loader.
-- * profile_embedding holds the embedding of the agent's profile (name, description, capabilities, domains)
--   with the model that produced it and a hash of the embedded text, so an unchanged profile is not re-embedded.

create table if not exists agents (
    id                   uuid primary key default uuid_generate_v4(),
    tenant_id            uuid not null references tenants(id),
    slug                 varchar(150) not null,
    name                 varchar(255) not null,
    tagline              varchar(500),
    description          text not null,
    agent_type           agent_type not null default 'specialist',
    status               agent_status not null default 'development',
    validation_status    validation_status not null default 'pending',
    domain_expertise     domain_expertise not null default 'general',
    data_classification  data_classification not null default 'internal',
    visibility           visibility_level not null default 'tenant',
    tier                 smallint not null default 2 check (tier between 1 and 3),
    model                varchar(100),
    temperature          numeric(3,2) check (temperature between 0 and 2),
    max_tokens           integer check (max_tokens between 1 and 200000),
    system_prompt        text,
    capabilities         text[] not null default '{}',
    specializations      text[] not null default '{}',
    therapeutic_areas    text[] not null default '{}',
    avatar_url           text,
    color                varchar(7) check (color ~ '^#[0-9A-Fa-f]{6}$'),
    version              varchar(50) not null default '1.0.0',
    metadata             jsonb not null default '{}'::jsonb,

    profile_embedding    vector(384),
    embedding_model      varchar(255),
    profile_sha256       char(64),
    embedded_at          timestamptz,

    created_by           uuid references auth.users(id) on delete set null,
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now(),
    deleted_at           timestamptz,

    constraint agents_slug unique (tenant_id, slug),
    constraint agents_slug_format check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    constraint agents_embedding_has_model check ((profile_embedding is null) = (embedding_model is null))
);
