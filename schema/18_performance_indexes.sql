-- 18 · Indexes: the seed's, the ones RLS and the loaders need, vector search, and one on every foreign key.
--
-- Decision: foreign-key indexes are derived from the catalog rather than listed by hand, so a table added in
-- a later phase file cannot be forgotten: every foreign key whose columns do not lead an existing index gets
-- one named <table>_<columns>_fk_idx.

-- The seed's hierarchy indexes.
create index if not exists idx_tenants_path on tenants using gist (tenant_path);
create index if not exists idx_tenants_parent on tenants (parent_tenant_id) where deleted_at is null;
create index if not exists idx_tenants_root on tenants (root_tenant_id) where deleted_at is null;

-- RLS hot path: "which tenants is this user an active member of, and with which role".
create index if not exists idx_tenant_members_user_active
    on tenant_members (user_id, tenant_id, role) where status = 'active';

-- Live registry rows per tenant (every list view and every policy filters on both).
do $$
declare
    t record;
begin
    for t in
        select c.table_name
        from information_schema.columns c
        where c.table_schema = 'public' and c.column_name = 'deleted_at'
          and exists (select 1 from information_schema.columns k
                      where k.table_schema = 'public' and k.table_name = c.table_name and k.column_name = 'tenant_id')
    loop
        execute format('create index if not exists %I on public.%I (tenant_id) where deleted_at is null',
                       left('idx_' || t.table_name || '_live', 63), t.table_name);
    end loop;
end $$;

-- Shared-content lookups by visibility (public and organisation-wide rows are read across tenants).
do $$
declare
    t record;
begin
    for t in
        select v.table_name,
               case when exists (select 1 from information_schema.columns k
                                 where k.table_schema = 'public' and k.table_name = v.table_name
                                   and k.column_name = 'tenant_id')
                    then 'tenant_id' else 'owner_tenant_id' end as owner_column
        from information_schema.columns v
        where v.table_schema = 'public' and v.column_name = 'visibility'
    loop
        execute format('create index if not exists %I on public.%I (visibility, %I)',
                       left('idx_' || t.table_name || '_visibility', 63), t.table_name, t.owner_column);
    end loop;
end $$;

-- Registry look-ups the loaders, search and stewards use.
create index if not exists idx_agents_status on agents (status) where deleted_at is null;
create index if not exists idx_agents_capabilities on agents using gin (capabilities);
create index if not exists idx_personas_role on personas (role_id) where deleted_at is null;
create index if not exists idx_jtbd_functional_area on jobs_to_be_done (functional_area) where deleted_at is null;
create index if not exists idx_prompts_tags on prompts using gin (tags);
create index if not exists idx_knowledge_chunks_hash on knowledge_chunks (source_id, content_sha256);
create index if not exists idx_knowledge_sources_hash on knowledge_sources (content_sha256);

-- Vector search (cosine distance; embeddings are normalised).
create index if not exists idx_knowledge_chunks_embedding_hnsw
    on knowledge_chunks using hnsw (embedding vector_cosine_ops);
create index if not exists idx_agents_profile_embedding_hnsw
    on agents using hnsw (profile_embedding vector_cosine_ops);

-- Conversations and executions read newest first.
create index if not exists idx_expert_consultations_user on expert_consultations (user_id, started_at desc);
create index if not exists idx_panel_discussions_user on panel_discussions (user_id, created_at desc);
create index if not exists idx_workflow_executions_status on workflow_executions (workflow_id, status);
create index if not exists idx_workflow_logs_time on workflow_logs (execution_id, logged_at);
create index if not exists idx_token_usage_messages_time on token_usage_messages (tenant_id, created_at);

-- Governance.
create index if not exists idx_audit_log_entity on audit_log (entity_type, entity_id);
create index if not exists idx_audit_log_time on audit_log (created_at);
create index if not exists idx_pipeline_loads_target on pipeline_loads (target, started_at desc);
create index if not exists idx_quarantined_rows_open on quarantined_rows (target) where resolved_at is null;

-- Every foreign key, last, so the explicit indexes above count as covering where they lead with its columns.
do $$
declare
    fk record;
    index_name text;
begin
    for fk in
        select con.conrelid::regclass as table_ref,
               rel.relname as table_name,
               con.conkey,
               (select string_agg(att.attname, '_' order by k.ord)
                  from unnest(con.conkey) with ordinality as k(attnum, ord)
                  join pg_attribute att on att.attrelid = con.conrelid and att.attnum = k.attnum) as column_names,
               (select string_agg(quote_ident(att.attname), ', ' order by k.ord)
                  from unnest(con.conkey) with ordinality as k(attnum, ord)
                  join pg_attribute att on att.attrelid = con.conrelid and att.attnum = k.attnum) as column_list
        from pg_constraint con
        join pg_class rel on rel.oid = con.conrelid
        join pg_namespace nsp on nsp.oid = rel.relnamespace
        where con.contype = 'f' and nsp.nspname = 'public'
    loop
        if not exists (
            select 1 from pg_index idx
            where idx.indrelid = fk.table_ref
              and idx.indpred is null
              and array(select unnest((idx.indkey::int2[])[0:cardinality(fk.conkey) - 1])) = fk.conkey
        ) then
            index_name := fk.table_name || '_' || fk.column_names || '_fk_idx';
            if length(index_name) > 63 then
                index_name := left(fk.table_name || '_' || fk.column_names, 52) || '_' || left(md5(index_name), 10);
            end if;
            execute format('create index if not exists %I on %s (%s)', index_name, fk.table_ref, fk.column_list);
        end if;
    end loop;
end $$;
