"""Loading validated frames into PostgreSQL: staging with COPY, idempotent upserts, junction sync, soft deletes
with a guard, quarantine of rejected rows, and the ledger of every load."""
