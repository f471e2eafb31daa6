"""vital-pipelines: the ETL that fills the VITAL.expert gold-standard PostgreSQL schema.

The library subpackages (`db`, `spreadsheets`, `knowledge`) know nothing of Dagster; `defs/` wires them into
Dagster assets, checks, schedules and sensors, assembled once in `definitions.py`.
"""
