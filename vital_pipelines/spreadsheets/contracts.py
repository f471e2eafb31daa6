"""The Pandera contract of every registry sheet, built from the entity catalog (`vital_pipelines.entities`).

Each column's metadata adds what Pandera has no slot for: how the text is parsed (`kind`), accepted header
aliases, an example, case normalisation of keys, the default applied to an empty optional cell, references to
another sheet's key (checked after each sheet's own rules) and the reference an empty cell is derived from.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandera.polars as pa
import polars as pl

from vital_pipelines.entities import ENTITIES, Column, Entity

_DTYPES = {"text": pl.Utf8, "key": pl.Utf8, "enum": pl.Utf8, "json": pl.Utf8, "int": pl.Int64, "float": pl.Float64,
           "bool": pl.Boolean, "list": pl.List(pl.Utf8)}


def _checks(column: Column) -> list[pa.Check]:
    checks = []
    if column.labels is not None:
        checks.append(pa.Check.isin(list(column.labels)))
    if column.pattern is not None:
        checks.append(pa.Check.str_matches(column.pattern))
    if column.max_length is not None:
        checks.append(pa.Check.str_length(max_value=column.max_length))
    if column.ge is not None:
        checks.append(pa.Check.ge(column.ge))
    if column.le is not None:
        checks.append(pa.Check.le(column.le))
    return checks


def schema_of(columns: tuple[Column, ...], name: str) -> pa.DataFrameSchema:
    """The Pandera schema of a sheet with these columns; extra columns are the validator's business (reported)."""
    return pa.DataFrameSchema(
        {c.name: pa.Column(_DTYPES[c.kind], checks=_checks(c), nullable=not c.required, unique=c.unique,
                           description=c.description,
                           metadata={"kind": c.kind, "example": c.example, "aliases": list(c.aliases), "case": c.case,
                                     "default": c.default, "references": c.references, "derive": c.derive,
                                     "synonyms": dict(c.synonyms)})
         for c in columns},
        name=name, strict=False, coerce=False)


@dataclass(frozen=True)
class SheetContract:
    """Where a sheet lives, its schema, its natural key, and the entity it declares (None for a sheet that is
    turned into rows another way, such as the matrix's grid)."""

    workbook: str
    sheet: str
    schema: pa.DataFrameSchema
    key: tuple[str, ...]
    optional: bool = False
    entity: Entity | None = None

    @property
    def name(self) -> str:
        return self.sheet

    def prepare(self) -> None:
        """Load pandera's polars backend, which pandera otherwise does at the first validation in a process
        (~0.1 s of imports): for a caller with idle time, e.g. waiting for the reader."""
        self.schema.get_backend(check_type=pl.DataFrame)


def contract_of(entity: Entity) -> SheetContract:
    return SheetContract(entity.workbook, entity.sheet, schema_of(entity.columns, entity.sheet), entity.key,
                         optional=entity.optional, entity=entity)


CONTRACTS: dict[str, SheetContract] = {e.sheet: contract_of(e) for e in ENTITIES}
WORKBOOKS: dict[str, tuple[SheetContract, ...]] = {}
for _contract in CONTRACTS.values():
    WORKBOOKS[_contract.workbook] = WORKBOOKS.get(_contract.workbook, ()) + (_contract,)

ORG_SHEETS = WORKBOOKS["org_structure.xlsx"]
PERSONAS, AGENTS, JTBDS = CONTRACTS["personas"], CONTRACTS["agents"], CONTRACTS["jtbds"]

__all__ = ["AGENTS", "CONTRACTS", "JTBDS", "ORG_SHEETS", "PERSONAS", "SheetContract", "WORKBOOKS", "contract_of",
           "schema_of"]
