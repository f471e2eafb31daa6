-- 17 · Layer 9 (governance): the audit trail, service-level audit, retention rules, and the pipeline's own
-- ledger of loads and quarantined spreadsheet rows.
--
-- Decisions:
-- * audit_log is append-only (no UPDATE/DELETE policy) and keeps rows 7 years by default (retain_until).
-- * pipeline_loads and quarantined_rows are the ingestion pipeline's governance tables: one row per load
--   (counts, source hash, Dagster run id) and one row per rejected spreadsheet row with its failures, resolved
--   when a later load accepts the row.

create table if not exists audit_log (
    id            uuid primary key default uuid_generate_v4(),
    tenant_id     uuid references tenants(id) on delete set null,
    actor_user_id uuid references auth.users(id) on delete set null,
    actor_role    varchar(100) not null default current_user,
    source        varchar(20) not null default 'app' check (source in ('app', 'pipeline', 'system')),
    action        varchar(50) not null,
    entity_type   varchar(100) not null,
    entity_id     text,
    old_values    jsonb,
    new_values    jsonb,
    details       jsonb not null default '{}'::jsonb,
    created_at    timestamptz not null default now(),
    retain_until  date not null default (current_date + interval '7 years')::date
);

create table if not exists service_role_audit (
    id           uuid primary key default uuid_generate_v4(),
    tenant_id    uuid references tenants(id) on delete set null,
    service_code varchar(50) references services_registry(service_code),
    performed_by varchar(100) not null default current_user,
    action       varchar(50) not null,
    target_table varchar(100),
    row_count    integer check (row_count >= 0),
    details      jsonb not null default '{}'::jsonb,
    created_at   timestamptz not null default now()
);

create table if not exists data_retention_policies (
    id                  uuid primary key default uuid_generate_v4(),
    tenant_id           uuid references tenants(id) on delete cascade,
    table_name          varchar(100) not null,
    data_classification data_classification,
    retention_days      integer not null check (retention_days > 0),
    action              varchar(20) not null default 'delete' check (action in ('delete', 'anonymize', 'archive')),
    legal_basis         text,
    is_active           boolean not null default true,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    constraint data_retention_policies_rule unique nulls not distinct (tenant_id, table_name, data_classification)
);

create table if not exists pipeline_loads (
    id            uuid primary key default uuid_generate_v4(),
    target        varchar(100) not null,
    source_file   text not null,
    source_sha256 char(64) not null,
    run_id        varchar(100),
    policy        varchar(20) not null check (policy in ('quarantine', 'strict')),
    status        varchar(20) not null check (status in ('succeeded', 'failed', 'refused')),
    inserted      integer not null default 0 check (inserted >= 0),
    updated       integer not null default 0 check (updated >= 0),
    unchanged     integer not null default 0 check (unchanged >= 0),
    deleted       integer not null default 0 check (deleted >= 0),
    rejected      integer not null default 0 check (rejected >= 0),
    details       jsonb not null default '{}'::jsonb,
    started_at    timestamptz not null default now(),
    finished_at   timestamptz
);

create table if not exists quarantined_rows (
    id             uuid primary key default uuid_generate_v4(),
    target         varchar(100) not null,
    row_key        text not null,
    source_file    text not null,
    sheet          varchar(100) not null,
    excel_row      integer not null check (excel_row >= 1),
    payload        jsonb not null,
    failures       jsonb not null,
    first_seen_at  timestamptz not null default now(),
    last_seen_at   timestamptz not null default now(),
    last_run_id    varchar(100),
    resolved_at    timestamptz,
    constraint quarantined_rows_key unique (target, row_key)
);
