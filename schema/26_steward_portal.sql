-- 26 · The stewards' web portal signs people in with the tenant API keys of `api_keys`.
--
-- * The portal runs as the loader role (its previews are loads that are rolled back). It may check a presented key
--   (private.verify_api_key, bcrypt through pgcrypto) and ask whether the key behind a session is still live
--   (private.api_key_session); it never reads `key_hash`. Keys are created and revoked by the operator, as the
--   schema's owner (`vital-pipelines keys`).

grant usage on schema private to vital_loader;
grant execute on function private.verify_api_key(text) to vital_loader;

create or replace function private.api_key_session(key uuid)
returns table (tenant_id uuid, tenant_slug text, key_name text)
language sql stable security definer
set search_path = ''
as $$
    select k.tenant_id, t.slug::text, k.name::text
    from public.api_keys k
    join public.tenants t on t.id = k.tenant_id
    where k.id = key
      and k.revoked_at is null
      and (k.expires_at is null or k.expires_at > pg_catalog.now())
$$;

revoke all on function private.api_key_session(uuid) from public;
grant execute on function private.api_key_session(uuid) to vital_loader, service_role;
