"""The Dagster layer: one folder per domain, each split by object type (assets, checks, resources, ...)."""
