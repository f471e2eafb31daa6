-- 23 · Where each registry row came from: the pipeline's provenance, kept beside the row.
--
-- Decisions:
-- * `loaded_from` (jsonb: file, sheet, row, sha256, load_id) records the load that last wrote the row from a
--   workbook; rows people create in the application have none. The soft delete of a load touches only rows whose
--   `loaded_from` names that load's workbook, so it never removes what the application created (as dlt's
--   `_dlt_load_id` and Airbyte's `_airbyte_raw_id` mark the rows their loads own).
-- * A column of its own rather than a key in `metadata`: the application writes `metadata`, and not every
--   registry table has one.

do $$
declare
    t text;
begin
    foreach t in array array['org_departments', 'org_roles', 'org_responsibilities', 'personas', 'agents',
                             'jobs_to_be_done'] loop
        execute format('alter table public.%I add column if not exists loaded_from jsonb', t);
        execute format('create index if not exists %I on public.%I ((loaded_from ->> ''file'')) '
                       'where deleted_at is null', 'idx_' || t || '_loaded_from', t);
    end loop;
end $$;
