"""What a registry entity is, declared once: its sheet, its table, its natural key, its columns and its links.

Everything else reads these declarations: the Pandera contract (`spreadsheets.contracts`), the staging types and
the upsert's column list (`loading.entity_load`, columns bound by name), the references validation checks and the
load resolves, the junctions a load keeps in step, the load order, the Dagster assets, the blank templates and
`docs/workbook-formats.md`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# How a cell's text is read (see spreadsheets.validation) → the type it is staged as in Postgres.
STAGE_TYPES = {"text": "text", "key": "text", "enum": "text", "int": "int", "float": "numeric", "bool": "boolean",
               "list": "text[]", "json": "jsonb"}


@dataclass(frozen=True)
class Link:
    """A junction row per item of a column: the entity's row (`owner` column of the junction) and the row the item
    names (`other`). `position` is a junction column filled from the item's place in the cell (`is_primary`: the
    first item; `display_order`: 1, 2, …); `values` are constants written with every link, as (column, value, SQL
    type)."""

    table: str
    owner: str
    other: str
    position: str | None = None
    values: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class Column:
    """One sheet column. `column` is where it lands in the entity's table (None: it lands in no table column, e.g.
    a list of references kept as junction rows, or the row's tenant); a reference lands as the id of the row it
    names. `required` rejects a row whose cell is empty or (for a reference) names nothing; a reference is required
    exactly when its table column is NOT NULL (tests/test_entities.py holds every declaration to that), so an
    optional one that names nothing is a warning: the row loads and keeps the text in `metadata.unresolved`."""

    name: str
    kind: str
    description: str
    example: str
    column: str | None = ""
    required: bool = False
    unique: bool = False
    pattern: str | None = None
    max_length: int | None = None
    ge: float | None = None
    le: float | None = None
    labels: tuple[str, ...] | None = None
    sql_type: str | None = None
    case: str | None = None
    aliases: tuple[str, ...] = ()
    default: object = None
    references: str | None = None
    derive: tuple[str, str] | None = None
    link: Link | None = None
    # spellings real exports use for allowed values (`very_high` → `expert`): what `map --suggest` offers first
    synonyms: tuple[tuple[str, str], ...] = ()

    @property
    def table_column(self) -> str | None:
        if self.column == "":
            return None if self.link else self.name
        return self.column

    @property
    def stage_type(self) -> str:
        return "uuid" if self.references and self.table_column else STAGE_TYPES[self.kind]

    @property
    def target(self) -> str | None:
        """The entity a reference names (`roles` for `roles.code`)."""
        return self.references.split(".")[0] if self.references else None


@dataclass(frozen=True)
class Entity:
    """One registry sheet and the table its rows become.

    `owner`: the table column holding the owning tenant (None: the table is shared by every tenant, as
    org_functions and industries are). `soft_delete`: rows a source no longer has are marked deleted (tables with
    `deleted_at`); otherwise they stay. `links_only`: the sheet's rows are junction rows, not rows of their own.
    `after`: the entities whose rows must exist first besides those the columns reference. `label`: the column a
    person would name a row by (references may use it instead of the key)."""

    sheet: str
    workbook: str
    table: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    description: str
    owner: str | None = "tenant_id"
    soft_delete: bool = True
    optional: bool = False
    links_only: bool = False
    asset: str | None = None
    after: tuple[str, ...] = field(default=())
    label: str = "name"

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def stored(self) -> tuple[Column, ...]:
        """The columns that land in the entity's own table, in declaration order."""
        return tuple(c for c in self.columns if c.table_column)

    @property
    def references(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.references)

    @property
    def links(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.link)

    @property
    def asset_name(self) -> str:
        return self.asset or self.table


__all__ = ["Column", "Entity", "Link", "STAGE_TYPES"]
