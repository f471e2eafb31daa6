"""The registry entities, each declared once (see `declaration` and `catalog`)."""

from vital_pipelines.entities.catalog import BY_SHEET, ENTITIES, upstream, workbook_entities
from vital_pipelines.entities.declaration import Column, Entity, Link

__all__ = ["BY_SHEET", "Column", "ENTITIES", "Entity", "Link", "upstream", "workbook_entities"]
