-- 15 · Layer 8: outputs and artifacts — stored files, deliverables produced by the services, user feedback,
-- and votes with their individual records.
--
-- Decision: a deliverable, feedback or vote comes from exactly one (or at least one) service context; the
-- CHECK constraints say which.

create table if not exists artifacts (
    id                  uuid primary key default uuid_generate_v4(),
    tenant_id           uuid not null references tenants(id),
    storage_bucket      varchar(100) not null,
    storage_path        text not null,
    file_name           varchar(500) not null,
    mime_type           varchar(255),
    byte_size           bigint check (byte_size >= 0),
    sha256              char(64),
    data_classification data_classification not null default 'confidential',
    uploaded_by         uuid references auth.users(id) on delete set null,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    deleted_at          timestamptz,
    constraint artifacts_location unique (storage_bucket, storage_path)
);

create table if not exists deliverables (
    id               uuid primary key default uuid_generate_v4(),
    tenant_id        uuid not null references tenants(id),
    consultation_id  uuid references expert_consultations(id) on delete set null,
    panel_id         uuid references panel_discussions(id) on delete set null,
    execution_id     uuid references workflow_executions(id) on delete set null,
    artifact_id      uuid references artifacts(id) on delete set null,
    template_id      uuid references templates(id) on delete set null,
    title            varchar(500) not null,
    deliverable_type varchar(30) not null
        check (deliverable_type in ('report', 'summary', 'slide_deck', 'document', 'analysis', 'plan', 'dataset', 'other')),
    content          text,
    format           varchar(20) not null default 'markdown'
        check (format in ('markdown', 'html', 'json', 'text', 'pdf', 'docx', 'pptx', 'xlsx')),
    approval_status  approval_status not null default 'draft',
    version          integer not null default 1 check (version >= 1),
    created_by       uuid references auth.users(id) on delete set null,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    deleted_at       timestamptz,
    constraint deliverables_has_content check (content is not null or artifact_id is not null)
);

create table if not exists consultation_feedback (
    id              uuid primary key default uuid_generate_v4(),
    tenant_id       uuid not null references tenants(id),
    user_id         uuid not null references auth.users(id),
    consultation_id uuid references expert_consultations(id) on delete cascade,
    panel_id        uuid references panel_discussions(id) on delete cascade,
    message_id      uuid references expert_messages(id) on delete cascade,
    deliverable_id  uuid references deliverables(id) on delete cascade,
    rating          smallint check (rating between 1 and 5),
    feedback_type   varchar(20) not null default 'rating'
        check (feedback_type in ('rating', 'thumbs_up', 'thumbs_down', 'correction', 'comment', 'flag')),
    comment         text,
    created_at      timestamptz not null default now(),
    constraint consultation_feedback_has_subject
        check (num_nonnulls(consultation_id, panel_id, message_id, deliverable_id) >= 1)
);

create table if not exists votes (
    id           uuid primary key default uuid_generate_v4(),
    tenant_id    uuid not null references tenants(id),
    panel_id     uuid references panel_discussions(id) on delete cascade,
    execution_id uuid references workflow_executions(id) on delete cascade,
    title        varchar(500) not null,
    description  text,
    vote_type    varchar(20) not null default 'single_choice'
        check (vote_type in ('single_choice', 'multiple_choice', 'approval', 'ranking')),
    options      jsonb not null default '[]'::jsonb,
    status       varchar(10) not null default 'open' check (status in ('open', 'closed')),
    opens_at     timestamptz not null default now(),
    closes_at    timestamptz,
    created_by   uuid references auth.users(id) on delete set null,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now(),
    constraint votes_window check (closes_at is null or closes_at >= opens_at)
);

create table if not exists vote_records (
    id             uuid primary key default uuid_generate_v4(),
    tenant_id      uuid not null references tenants(id),
    vote_id        uuid not null references votes(id) on delete cascade,
    voter_user_id  uuid references auth.users(id) on delete cascade,
    voter_agent_id uuid references agents(id) on delete cascade,
    choice         jsonb not null,
    rationale      text,
    cast_at        timestamptz not null default now(),
    constraint vote_records_one_voter check (num_nonnulls(voter_user_id, voter_agent_id) = 1),
    constraint vote_records_user_once unique (vote_id, voter_user_id),
    constraint vote_records_agent_once unique (vote_id, voter_agent_id)
);
