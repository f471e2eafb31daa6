-- Source columns that a mapping file keeps with a row (`metadata:`) need a home in every registry table the
-- mapped exports feed: departments, roles, personas, agents and JTBDs have one; functions and responsibilities
-- get it here. Table-level grants and policies of 22 cover the new columns.
alter table org_functions add column if not exists metadata jsonb not null default '{}'::jsonb;
alter table org_responsibilities add column if not exists metadata jsonb not null default '{}'::jsonb;
