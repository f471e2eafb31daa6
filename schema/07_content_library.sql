-- 07 · Layer 4: prompts, skills, tools, knowledge (sources and pgvector chunks) and templates.
--
-- Decisions:
-- * Each content table is tenant-owned with a visibility_level, addressed by a slug unique per tenant.
-- * knowledge_chunks stores with every vector the model name, revision and dimension that produced it and
--   the chunk's content hash, so the sync re-embeds only new or changed chunks and a model change is visible.
--   The vector column is typed vector(384) for the default model; a model of another dimension is a backfill
--   that alters the column (the HNSW index needs a fixed dimension).
-- * Capabilities are created with domains in 08 (the seed's phase order), although the seed lists them here.

create table if not exists prompts (
    id                uuid primary key default uuid_generate_v4(),
    tenant_id         uuid not null references tenants(id),
    slug              varchar(150) not null,
    name              varchar(255) not null,
    role_type         prompt_role_type not null,
    content           text not null,
    description       text,
    variables         text[] not null default '{}',
    domain_expertise  domain_expertise not null default 'general',
    approval_status   approval_status not null default 'draft',
    visibility        visibility_level not null default 'tenant',
    version           varchar(50) not null default '1.0.0',
    content_sha256    char(64),
    tags              text[] not null default '{}',
    metadata          jsonb not null default '{}'::jsonb,
    created_by        uuid references auth.users(id) on delete set null,
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    deleted_at        timestamptz,
    constraint prompts_slug unique (tenant_id, slug),
    constraint prompts_slug_format check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$')
);

create table if not exists skills (
    id          uuid primary key default uuid_generate_v4(),
    tenant_id   uuid not null references tenants(id),
    slug        varchar(150) not null,
    name        varchar(255) not null,
    description text,
    category    varchar(100),
    visibility  visibility_level not null default 'tenant',
    is_active   boolean not null default true,
    metadata    jsonb not null default '{}'::jsonb,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    deleted_at  timestamptz,
    constraint skills_slug unique (tenant_id, slug)
);

create table if not exists tools (
    id                  uuid primary key default uuid_generate_v4(),
    tenant_id           uuid not null references tenants(id),
    slug                varchar(150) not null,
    name                varchar(255) not null,
    description         text,
    tool_type           varchar(30) not null default 'integration'
        check (tool_type in ('api', 'database', 'search', 'calculator', 'document', 'integration', 'code')),
    endpoint_url        text,
    auth_type           varchar(20) check (auth_type in ('none', 'api_key', 'oauth2', 'basic', 'service_account')),
    config              jsonb not null default '{}'::jsonb,
    data_classification data_classification not null default 'internal',
    visibility          visibility_level not null default 'tenant',
    is_active           boolean not null default true,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    deleted_at          timestamptz,
    constraint tools_slug unique (tenant_id, slug)
);

create table if not exists knowledge_sources (
    id                  uuid primary key default uuid_generate_v4(),
    tenant_id           uuid not null references tenants(id),
    slug                varchar(200) not null,
    title               varchar(500) not null,
    source_path         text,
    source_type         varchar(20) not null
        check (source_type in ('markdown', 'text', 'pdf', 'docx', 'html', 'url', 'other')),
    domain              varchar(100),
    solution_id         uuid references solutions(id) on delete set null,
    visibility          visibility_level not null default 'tenant',
    data_classification data_classification not null default 'internal',
    content_sha256      char(64),
    byte_size           bigint check (byte_size >= 0),
    word_count          integer check (word_count >= 0),
    chunk_count         integer not null default 0 check (chunk_count >= 0),
    front_matter        jsonb not null default '{}'::jsonb,
    status              varchar(20) not null default 'pending'
        check (status in ('pending', 'synced', 'failed', 'removed')),
    extraction_error    text,
    last_synced_at      timestamptz,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    deleted_at          timestamptz,
    constraint knowledge_sources_slug unique (tenant_id, slug)
);

create table if not exists knowledge_chunks (
    id                       uuid primary key default uuid_generate_v4(),
    tenant_id                uuid not null references tenants(id),
    source_id                uuid not null references knowledge_sources(id) on delete cascade,
    chunk_index              integer not null check (chunk_index >= 0),
    heading_path             text[] not null default '{}',
    content                  text not null,
    token_count              integer not null check (token_count > 0),
    content_sha256           char(64) not null,
    embedding                vector(384),
    embedding_model          varchar(255),
    embedding_model_revision varchar(100),
    embedding_dimension      integer check (embedding_dimension > 0),
    embedded_at              timestamptz,
    metadata                 jsonb not null default '{}'::jsonb,
    created_at               timestamptz not null default now(),
    updated_at               timestamptz not null default now(),
    constraint knowledge_chunks_position unique (source_id, chunk_index),
    constraint knowledge_chunks_embedding_has_model
        check ((embedding is null) = (embedding_model is null))
);

create table if not exists templates (
    id              uuid primary key default uuid_generate_v4(),
    tenant_id       uuid not null references tenants(id),
    slug            varchar(150) not null,
    name            varchar(255) not null,
    template_type   varchar(30) not null
        check (template_type in ('document', 'presentation', 'email', 'report', 'workflow', 'panel', 'prompt')),
    description     text,
    content         text not null,
    format          varchar(20) not null default 'markdown'
        check (format in ('markdown', 'html', 'json', 'text', 'docx', 'pptx')),
    variables       text[] not null default '{}',
    approval_status approval_status not null default 'draft',
    visibility      visibility_level not null default 'tenant',
    version         varchar(50) not null default '1.0.0',
    created_by      uuid references auth.users(id) on delete set null,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    deleted_at      timestamptz,
    constraint templates_slug unique (tenant_id, slug)
);
