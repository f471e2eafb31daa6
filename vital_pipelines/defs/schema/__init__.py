"""The database schema: applying the SQL phase files in `schema/`."""
