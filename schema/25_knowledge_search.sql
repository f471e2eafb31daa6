-- 25 · Knowledge search: a full-text index beside the vectors, and chunks readable exactly where their document is.
--
-- * `search_vector` holds the chunk's heading path and text as an English tsvector (GIN-indexed), kept by a trigger,
--   so exact terms, codes and names ("IQWiG", "DTAC", "£20m") are found even where the embedding misses them. The
--   lexical and the vector ranking are fused by the search (vital_pipelines/knowledge/search.py).
-- * A chunk has no visibility of its own: it is readable by exactly those who may read its document. 22 gave
--   knowledge_chunks the tenant-only read policy of a table without `visibility`, so a platform document shared as
--   `public` was searchable by nobody outside the platform tenant. The policy below asks knowledge_sources,
--   whose own policy (content_read_allowed on tenant, visibility) then decides, under the caller's claims.
-- * Search on behalf of a user runs as `authenticated` with that user's JWT claims, switched to from a role that can
--   do nothing else (locally `vital_search`, created by scripts/setup; on Supabase `authenticator`).

alter table knowledge_chunks add column if not exists search_vector tsvector;

create or replace function private.knowledge_chunk_search_vector()
returns trigger
language plpgsql
set search_path = pg_catalog, public
as $$
begin
    new.search_vector := to_tsvector('english'::regconfig,
        array_to_string(new.heading_path, ' ') || E'\n' || new.content);
    return new;
end
$$;

drop trigger if exists knowledge_chunks_search_vector on knowledge_chunks;
create trigger knowledge_chunks_search_vector
    before insert or update of content, heading_path on knowledge_chunks
    for each row execute function private.knowledge_chunk_search_vector();

update knowledge_chunks
   set search_vector = to_tsvector('english'::regconfig, array_to_string(heading_path, ' ') || E'\n' || content)
 where search_vector is null;

create index if not exists idx_knowledge_chunks_search on knowledge_chunks using gin (search_vector);

drop policy if exists tenant_read on knowledge_chunks;
create policy tenant_read on knowledge_chunks for select to authenticated
    using (exists (select 1 from knowledge_sources s where s.id = knowledge_chunks.source_id and s.deleted_at is null));
