-- 11 · Layer 6, service 2 (Ask Panel): multi-agent panel discussions, their rounds, messages, votes
-- and consensus, and reusable panel templates and facilitator settings.

create table if not exists panel_templates (
    id                  uuid primary key default uuid_generate_v4(),
    tenant_id           uuid not null references tenants(id),
    slug                varchar(150) not null,
    name                varchar(255) not null,
    description         text,
    panel_composition   jsonb not null default '[]'::jsonb,
    max_rounds          smallint not null default 3 check (max_rounds between 1 and 20),
    consensus_threshold numeric(4,3) not null default 0.67 check (consensus_threshold between 0 and 1),
    visibility          visibility_level not null default 'tenant',
    is_active           boolean not null default true,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    deleted_at          timestamptz,
    constraint panel_templates_slug unique (tenant_id, slug)
);

create table if not exists panel_facilitator_configs (
    id                   uuid primary key default uuid_generate_v4(),
    tenant_id            uuid not null references tenants(id),
    template_id          uuid references panel_templates(id) on delete cascade,
    facilitator_agent_id uuid references agents(id) on delete set null,
    name                 varchar(255) not null,
    facilitation_style   varchar(20) not null default 'structured'
        check (facilitation_style in ('structured', 'socratic', 'debate', 'delphi', 'free_form')),
    turn_policy          varchar(20) not null default 'round_robin'
        check (turn_policy in ('round_robin', 'relevance', 'moderator_choice')),
    max_turns_per_member smallint check (max_turns_per_member between 1 and 50),
    summarise_each_round boolean not null default true,
    config               jsonb not null default '{}'::jsonb,
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now(),
    constraint panel_facilitator_configs_name unique (tenant_id, name)
);

create table if not exists panel_discussions (
    id                  uuid primary key default uuid_generate_v4(),
    tenant_id           uuid not null references tenants(id),
    user_id             uuid not null references auth.users(id),
    template_id         uuid references panel_templates(id) on delete set null,
    title               varchar(500) not null,
    question            text not null,
    mode                conversation_mode not null default 'panel_discussion',
    status              varchar(20) not null default 'draft'
        check (status in ('draft', 'active', 'concluded', 'archived')),
    max_rounds          smallint not null default 3 check (max_rounds between 1 and 20),
    current_round       smallint not null default 0 check (current_round >= 0),
    consensus_reached   boolean not null default false,
    summary             text,
    data_classification data_classification not null default 'confidential',
    started_at          timestamptz,
    concluded_at        timestamptz,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    deleted_at          timestamptz,
    constraint panel_discussions_rounds check (current_round <= max_rounds)
);

create table if not exists panel_members (
    id          uuid primary key default uuid_generate_v4(),
    tenant_id   uuid not null references tenants(id),
    panel_id    uuid not null references panel_discussions(id) on delete cascade,
    agent_id    uuid not null references agents(id),
    member_role varchar(20) not null default 'panelist'
        check (member_role in ('panelist', 'facilitator', 'moderator', 'observer')),
    position    smallint not null default 1 check (position >= 1),
    perspective text,
    joined_at   timestamptz not null default now(),
    constraint panel_members_once unique (panel_id, agent_id)
);

create table if not exists panel_rounds (
    id           uuid primary key default uuid_generate_v4(),
    tenant_id    uuid not null references tenants(id),
    panel_id     uuid not null references panel_discussions(id) on delete cascade,
    round_number smallint not null check (round_number >= 1),
    topic        text,
    status       varchar(20) not null default 'open' check (status in ('open', 'closed')),
    summary      text,
    started_at   timestamptz not null default now(),
    ended_at     timestamptz,
    constraint panel_rounds_number unique (panel_id, round_number)
);

create table if not exists panel_messages (
    id              uuid primary key default uuid_generate_v4(),
    tenant_id       uuid not null references tenants(id),
    panel_id        uuid not null references panel_discussions(id) on delete cascade,
    round_id        uuid references panel_rounds(id) on delete cascade,
    member_id       uuid references panel_members(id) on delete set null,
    sequence_number integer not null check (sequence_number >= 1),
    role            message_role not null,
    content         text not null,
    model           varchar(100),
    tokens_input    integer not null default 0 check (tokens_input >= 0),
    tokens_output   integer not null default 0 check (tokens_output >= 0),
    created_at      timestamptz not null default now(),
    constraint panel_messages_order unique (panel_id, sequence_number)
);

create table if not exists panel_consensus (
    id                  uuid primary key default uuid_generate_v4(),
    tenant_id           uuid not null references tenants(id),
    panel_id            uuid not null references panel_discussions(id) on delete cascade,
    round_id            uuid references panel_rounds(id) on delete cascade,
    consensus_statement text not null,
    agreement_level     numeric(4,3) not null check (agreement_level between 0 and 1),
    method              varchar(20) not null default 'vote'
        check (method in ('vote', 'delphi', 'facilitator_synthesis', 'unanimous')),
    dissenting_views    jsonb not null default '[]'::jsonb,
    created_at          timestamptz not null default now()
);

create table if not exists panel_votes (
    id           uuid primary key default uuid_generate_v4(),
    tenant_id    uuid not null references tenants(id),
    panel_id     uuid not null references panel_discussions(id) on delete cascade,
    round_id     uuid not null references panel_rounds(id) on delete cascade,
    member_id    uuid not null references panel_members(id) on delete cascade,
    proposal_key varchar(100) not null,
    vote         varchar(10) not null check (vote in ('agree', 'disagree', 'abstain')),
    confidence   numeric(4,3) check (confidence between 0 and 1),
    rationale    text,
    created_at   timestamptz not null default now(),
    constraint panel_votes_once unique (round_id, member_id, proposal_key)
);
