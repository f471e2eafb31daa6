-- 27 · Lexical search at scale: term statistics kept with the chunks, exact figures and codes as terms.
--
-- * The lexical ranking (BM25) needs, per query term, the number of chunks holding it, and the corpus size and mean
--   chunk length. Counting them at query time costs a scan of the matching chunks per term and per match (quadratic:
--   seconds per query at 2,000 chunks). They are kept instead in `knowledge_lexicon` (chunks per lexeme) and
--   `knowledge_corpus` (chunks and tokens), maintained by statement-level triggers in the chunk's own transaction.
-- * Both are kept per (tenant, visibility), the two columns the read policy of knowledge_sources decides on, and
--   carry the same policy: a caller's statistics are those of exactly the chunks it may read, so no term of another
--   tenant's documents changes a caller's ranking or can be probed through it.
-- * The English parser drops currency signs and percent signs and splits codes ("£20m" becomes "20m", the same as
--   "$20M"). `knowledge_text_vector` adds such figures and codes, lower-cased and without inner spaces, as terms of
--   their own beside the English ones; queries are parsed by the same function, so "£20m" matches "£20m" only.
-- * `lexical_length` is a chunk's number of terms (BM25's document length).

create or replace function private.knowledge_exact_terms(body text)
returns text[]
language sql immutable parallel safe
set search_path = pg_catalog
as $$
    select coalesce(array_agg(regexp_replace(m[1], '\s+', '', 'g') order by ord), '{}')
    from regexp_matches(lower(coalesce(body, '')),
        '('
        || '[£$€¥]\s?\d[\d,]*(?:\.\d+)?(?:\s?(?:bn|m|k|million|billion|thousand)\M)?'
        || '|\m\d+(?:\.\d+)?\s?%'
        || '|\m(?:part|phase|section|article|annex|module|class|schedule|chapter|appendix|form|stage|step|tier|'
        ||     'level|grade|type|rule|title|clause|version)\s\d+[a-z]?\M'
        || '|\m[a-z]+\d[a-z0-9]*(?:[.\-/][a-z0-9]+)*(?:\([a-z0-9.]+\))?'
        || ')', 'g') with ordinality as found(m, ord)
$$;

create or replace function private.knowledge_text_vector(body text)
returns tsvector
language sql immutable parallel safe
set search_path = pg_catalog
as $$
    select to_tsvector('english'::regconfig, coalesce(body, '')) || coalesce((
        select string_agg(format('%s:%s', quote_literal(term),
                                 array_to_string(array(select generate_series(1, least(n, 256)::int)), ',')), ' ')
        from (select term, count(*) as n from unnest(private.knowledge_exact_terms(body)) term
              where term !~ '[''\\]' group by term) counted)::tsvector, ''::tsvector)
$$;

grant execute on function private.knowledge_exact_terms(text), private.knowledge_text_vector(text)
    to authenticated, vital_loader, vital_search;

alter table knowledge_chunks add column if not exists lexical_length integer;
-- Kept in the row (compressed) rather than in the TOAST table: scoring reads the search vector of every chunk that
-- matches a query term, and a TOAST fetch per chunk made that four times slower.
alter table knowledge_chunks alter column search_vector set storage main;

create or replace function private.knowledge_chunk_search_vector()
returns trigger
language plpgsql
set search_path = pg_catalog, public
as $$
begin
    new.search_vector := private.knowledge_text_vector(array_to_string(new.heading_path, ' ') || E'\n' || new.content);
    new.lexical_length := (select coalesce(sum(cardinality(t.positions)), 0) from unnest(new.search_vector) t);
    return new;
end
$$;

update knowledge_chunks
   set search_vector = private.knowledge_text_vector(array_to_string(heading_path, ' ') || E'\n' || content),
       lexical_length = 0
 where lexical_length is null;
update knowledge_chunks c
   set lexical_length = (select coalesce(sum(cardinality(t.positions)), 0) from unnest(c.search_vector) t)
 where lexical_length = 0;

create table if not exists knowledge_lexicon (
    lexeme      text not null,
    tenant_id   uuid not null references tenants(id) on delete cascade,
    visibility  visibility_level not null,
    chunk_count bigint not null check (chunk_count > 0),
    primary key (lexeme, tenant_id, visibility)
);

create table if not exists knowledge_corpus (
    tenant_id    uuid not null references tenants(id) on delete cascade,
    visibility   visibility_level not null,
    chunk_count  bigint not null,
    total_length bigint not null,
    primary key (tenant_id, visibility)
);

create index if not exists idx_knowledge_lexicon_tenant on knowledge_lexicon (tenant_id);

-- Written only by the triggers below (as the owner, through its service_role membership, like every forced table).
alter table knowledge_lexicon enable row level security;
alter table knowledge_corpus enable row level security;
alter table knowledge_lexicon force row level security;
alter table knowledge_corpus force row level security;
drop policy if exists service_role_all on knowledge_lexicon;
create policy service_role_all on knowledge_lexicon to service_role using (true) with check (true);
drop policy if exists service_role_all on knowledge_corpus;
create policy service_role_all on knowledge_corpus to service_role using (true) with check (true);
grant select, insert, update, delete on knowledge_lexicon, knowledge_corpus to service_role;
drop policy if exists content_read on knowledge_lexicon;
create policy content_read on knowledge_lexicon for select to authenticated
    using (private.content_read_allowed(tenant_id, visibility));
drop policy if exists content_read on knowledge_corpus;
create policy content_read on knowledge_corpus for select to authenticated
    using (private.content_read_allowed(tenant_id, visibility));
grant select on knowledge_lexicon, knowledge_corpus to authenticated;
-- The operator's search runs as the loader, which reads every chunk; it reads every statistic too, writes none.
drop policy if exists pipeline_loader_read on knowledge_lexicon;
create policy pipeline_loader_read on knowledge_lexicon for select to vital_loader using (true);
drop policy if exists pipeline_loader_read on knowledge_corpus;
create policy pipeline_loader_read on knowledge_corpus for select to vital_loader using (true);
grant select on knowledge_lexicon, knowledge_corpus to vital_loader;

-- The statement that applies signed changes to both tables. `chunks` is the text of a query of rows (source_id,
-- search_vector, lexical_length, sign): +1 for a chunk that now counts, -1 for one that no longer does; only chunks of
-- live sources count. It is text because a trigger's transition tables are visible only to the statements of the
-- trigger function itself, which runs it with `execute` (the text comes from the functions below, never from data).
create or replace function private.knowledge_statistics_change(chunks text)
returns text
language sql immutable
set search_path = pg_catalog
as $$
    select format($sql$
        with changed as (
            select s.tenant_id, s.visibility, c.search_vector, c.lexical_length, c.sign
              from (%s) c join public.knowledge_sources s on s.id = c.source_id and s.deleted_at is null),
        terms as (
            select t.lexeme, c.tenant_id, c.visibility, sum(c.sign)::bigint as delta
              from changed c, unnest(c.search_vector) t group by 1, 2, 3 having sum(c.sign) <> 0),
        added as (
            insert into public.knowledge_lexicon as l (lexeme, tenant_id, visibility, chunk_count)
            select lexeme, tenant_id, visibility, delta from terms where delta > 0 order by 1, 2, 3
            on conflict (lexeme, tenant_id, visibility) do update set chunk_count = l.chunk_count + excluded.chunk_count
            returning 1),
        lowered as (
            update public.knowledge_lexicon l set chunk_count = l.chunk_count + d.delta
              from terms d where d.delta < 0 and l.chunk_count + d.delta > 0
               and (l.lexeme, l.tenant_id, l.visibility) = (d.lexeme, d.tenant_id, d.visibility)
            returning 1),
        emptied as (
            delete from public.knowledge_lexicon l using terms d where d.delta < 0 and l.chunk_count + d.delta <= 0
               and (l.lexeme, l.tenant_id, l.visibility) = (d.lexeme, d.tenant_id, d.visibility)
            returning 1)
        insert into public.knowledge_corpus as k (tenant_id, visibility, chunk_count, total_length)
        select tenant_id, visibility, sum(sign), sum(sign * lexical_length) from changed group by 1, 2 order by 1, 2
        on conflict (tenant_id, visibility) do update
            set chunk_count = k.chunk_count + excluded.chunk_count, total_length = k.total_length + excluded.total_length
        $sql$, chunks)
$$;

create or replace function private.knowledge_chunks_count_terms()
returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
    counted constant text := 'select source_id, search_vector, coalesce(lexical_length, 0) as lexical_length, %s as sign from %I';
begin
    execute private.knowledge_statistics_change(case tg_op
        when 'INSERT' then format(counted, 1, 'new_chunks')
        when 'DELETE' then format(counted, -1, 'old_chunks')
        else format(counted, -1, 'old_chunks') || ' union all ' || format(counted, 1, 'new_chunks') end);
    return null;
end
$$;

-- A source whose tenant, visibility or liveness changes moves its chunks' counts: taken away before the change
-- (while the row still holds the old values the counts were kept under), added after it. A source about to be
-- deleted takes them away before the cascade removes its chunks, whose own trigger then finds no source.
create or replace function private.knowledge_sources_count_terms()
returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
    source constant public.knowledge_sources := case tg_when when 'BEFORE' then old else new end;
begin
    if source.deleted_at is null then
        execute private.knowledge_statistics_change(format(
            'select source_id, search_vector, coalesce(lexical_length, 0) as lexical_length, %s as sign '
            'from public.knowledge_chunks where source_id = %L::uuid',
            case tg_when when 'BEFORE' then -1 else 1 end, source.id));
    end if;
    return case tg_op when 'DELETE' then old else new end;
end
$$;

revoke all on function private.knowledge_chunks_count_terms(), private.knowledge_sources_count_terms() from public;

drop trigger if exists knowledge_chunks_terms_inserted on knowledge_chunks;
create trigger knowledge_chunks_terms_inserted after insert on knowledge_chunks
    referencing new table as new_chunks for each statement execute function private.knowledge_chunks_count_terms();
drop trigger if exists knowledge_chunks_terms_updated on knowledge_chunks;
create trigger knowledge_chunks_terms_updated after update on knowledge_chunks
    referencing old table as old_chunks new table as new_chunks
    for each statement execute function private.knowledge_chunks_count_terms();
drop trigger if exists knowledge_chunks_terms_deleted on knowledge_chunks;
create trigger knowledge_chunks_terms_deleted after delete on knowledge_chunks
    referencing old table as old_chunks for each statement execute function private.knowledge_chunks_count_terms();

drop trigger if exists knowledge_sources_terms_deleted on knowledge_sources;
create trigger knowledge_sources_terms_deleted before delete on knowledge_sources
    for each row when (old.deleted_at is null) execute function private.knowledge_sources_count_terms();
drop trigger if exists knowledge_sources_terms_moved_from on knowledge_sources;
create trigger knowledge_sources_terms_moved_from before update of tenant_id, visibility, deleted_at on knowledge_sources
    for each row when (old.deleted_at is null and (old.tenant_id, old.visibility, true)
                       is distinct from (new.tenant_id, new.visibility, new.deleted_at is null))
    execute function private.knowledge_sources_count_terms();
drop trigger if exists knowledge_sources_terms_moved_to on knowledge_sources;
create trigger knowledge_sources_terms_moved_to after update of tenant_id, visibility, deleted_at on knowledge_sources
    for each row when (new.deleted_at is null and (old.tenant_id, old.visibility, old.deleted_at is null)
                       is distinct from (new.tenant_id, new.visibility, true))
    execute function private.knowledge_sources_count_terms();

-- From scratch, so applying this file again (or after a restore) leaves exact counts.
delete from knowledge_lexicon;
delete from knowledge_corpus;
do $$
begin
    execute private.knowledge_statistics_change(
        'select source_id, search_vector, coalesce(lexical_length, 0) as lexical_length, 1 as sign from public.knowledge_chunks');
end $$;

-- A search's filters (tenant slug, visibility levels, domain, a solution's code, source type; null: any) over one
-- live source: said once, for the vector ranking's query (vital_pipelines/knowledge/search.py) and the lexical
-- candidates below. Plain SQL without settings, so the planner inlines it where it is used.
create or replace function private.knowledge_source_matches(
    s public.knowledge_sources, tenant_slug text, visibilities text[], domain_name text, solution_code text,
    source_kind text)
returns boolean
language sql stable
as $$
    select s.deleted_at is null
       and (tenant_slug is null or s.tenant_id = (select t.id from public.tenants t where t.slug = tenant_slug))
       and (visibilities is null or s.visibility::text = any(visibilities))
       and (domain_name is null or pg_catalog.lower(s.domain) = pg_catalog.lower(domain_name))
       and (solution_code is null or s.solution_id in (select x.id from public.solutions x where x.code = solution_code))
       and (source_kind is null or s.source_type = source_kind)
$$;

-- The chunks holding a query's candidate terms, among those the caller may read, narrowed by the search's filters.
-- Under row-level security the full-text match cannot use the GIN index (`@@` is not leakproof, so the planner
-- evaluates the policy on every chunk first: a scan of the whole table per query) and the read policy runs once per
-- chunk. Here the read rule is the chunks' own policy (a live source that private.content_read_allowed admits),
-- decided once per (tenant, visibility) pair, and the match uses the index. A caller acting as `authenticated` gets
-- what its claims allow; a role that reads knowledge_chunks itself (the loader, the owner) gets every chunk.
create or replace function private.knowledge_lexical_candidates(
    candidates tsquery, tenant_slug text default null, visibilities text[] default null, domain_name text default null,
    solution_code text default null, source_kind text default null)
returns table (id uuid, search_vector tsvector, lexical_length integer)
language sql stable security definer
set search_path = ''
as $$
    -- Materialised, so the planner cannot turn the index match into one probe per source.
    with matching as materialized (
        select c.id, c.source_id, c.search_vector, c.lexical_length
          from public.knowledge_chunks c where c.search_vector @@ candidates),
    readable as materialized (
        select k.tenant_id, k.visibility
          from public.knowledge_corpus k
         where case when current_setting('role', true) is distinct from 'authenticated'
                     and pg_catalog.has_table_privilege(session_user, 'public.knowledge_chunks', 'select')
                    then true
                    else private.content_read_allowed(k.tenant_id, k.visibility) end)
    select c.id, c.search_vector, c.lexical_length
      from matching c
      join public.knowledge_sources s on s.id = c.source_id and s.deleted_at is null
      join readable r on r.tenant_id = s.tenant_id and r.visibility = s.visibility
     where private.knowledge_source_matches(s, tenant_slug, visibilities, domain_name, solution_code, source_kind)
$$;

revoke all on function private.knowledge_lexical_candidates(tsquery, text, text[], text, text, text) from public;
grant execute on function private.knowledge_lexical_candidates(tsquery, text, text[], text, text, text)
    to authenticated, vital_loader;

-- A chunk stays readable exactly where its document is (25), but the rule is decided once per query rather than once
-- per source row: as `exists (... knowledge_sources ...)`, every search made the planner run the sources' read
-- policy (content_read_allowed) over every source, 57 ms at 4,000 documents. The sources readable by the caller are
-- found per (tenant, visibility) pair, of which there are a handful.
create or replace function private.readable_knowledge_sources()
returns setof uuid
language sql stable security definer
set search_path = ''
as $$
    with pairs as materialized (
        select distinct s.tenant_id, s.visibility from public.knowledge_sources s where s.deleted_at is null),
    readable as (
        select p.tenant_id, p.visibility from pairs p where private.content_read_allowed(p.tenant_id, p.visibility))
    select s.id from public.knowledge_sources s
      join readable r on r.tenant_id = s.tenant_id and r.visibility = s.visibility
     where s.deleted_at is null
$$;

revoke all on function private.readable_knowledge_sources() from public;
grant execute on function private.readable_knowledge_sources() to authenticated;

drop policy if exists tenant_read on knowledge_chunks;
create policy tenant_read on knowledge_chunks for select to authenticated
    using (source_id in (select private.readable_knowledge_sources()));
