"""One Pandera contract per sheet: the single source of truth for columns, types, rules, documentation and
the blank template workbooks.

Each model's Field metadata adds what Pandera has no slot for: how the text is parsed (`kind`), accepted header
aliases, an example, case normalisation of keys, the default applied to an empty optional cell, and
references to another sheet's key (checked after each sheet's own rules).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pandera.polars as pa
import polars as pl

from vital_pipelines import enums

SLUG = r"^[a-z0-9]+(-[a-z0-9]+)*$"
CODE = r"^[A-Z0-9]+(-[A-Z0-9]+)*$"
JTBD_CODE = r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$"
HEX_COLOUR = r"^#[0-9A-Fa-f]{6}$"
URL = r"^(https?://|/)\S+$"
TENANT_SLUG = SLUG


def _meta(kind: str, example: str, *, aliases: tuple[str, ...] = (), case: str | None = None,
          default=None, references: str | None = None, derive: tuple[str, str] | None = None) -> dict:
    """`derive`: (another reference column, the column of the row it names) to fill an empty cell from, such as a
    persona's department from its role."""
    return {"kind": kind, "example": example, "aliases": list(aliases), "case": case, "default": default,
            "references": references, "derive": derive}


def _tenant_field():
    return pa.Field(nullable=True, str_matches=TENANT_SLUG, description="Owning tenant's slug; empty = the platform.",
                    metadata=_meta("key", "vital-platform", case="lower", aliases=("tenant_slug",)))


def _metadata_field():
    return pa.Field(nullable=True, description="Source columns kept with the row, as a JSON object (a mapping file's "
                    "`metadata:` fills it).", metadata=_meta("json", '{"source_id": "42"}'))


class _Sheet(pa.DataFrameModel):
    class Config:
        strict = False
        coerce = False


class FunctionsSheet(_Sheet):
    code: pl.Utf8 = pa.Field(unique=True, str_matches=CODE, str_length={"max_value": 50},
                             description="Function code, as in the schema's seed (COMM, MA, HEOR, …).",
                             metadata=_meta("key", "MA", case="upper", aliases=("function_code",)))
    name: pl.Utf8 = pa.Field(unique=True, str_length={"max_value": 255}, description="Function name.",
                             metadata=_meta("text", "Medical Affairs", aliases=("function", "function_name")))
    description: Optional[pl.Utf8] = pa.Field(nullable=True, description="What the function covers.",
                                              metadata=_meta("text", "MSL, Medical Communications, Evidence Generation"))
    color: Optional[pl.Utf8] = pa.Field(nullable=True, str_matches=HEX_COLOUR, description="UI colour, #RRGGBB.",
                                        metadata=_meta("text", "#2CA02C", aliases=("colour",)))
    display_order: Optional[pl.Int64] = pa.Field(nullable=True, ge=1, le=1000, description="Sort position in the UI.",
                                                  metadata=_meta("int", "2", aliases=("order",)))
    metadata: Optional[pl.Utf8] = _metadata_field()


class DepartmentsSheet(_Sheet):
    code: pl.Utf8 = pa.Field(unique=True, str_matches=CODE, str_length={"max_value": 50},
                             description="Department code, unique.",
                             metadata=_meta("key", "MA-MSL", case="upper", aliases=("department_code",)))
    name: pl.Utf8 = pa.Field(str_length={"max_value": 255}, description="Department name.",
                             metadata=_meta("text", "Medical Science Liaison", aliases=("department", "department_name")))
    function_code: pl.Utf8 = pa.Field(description="The function the department belongs to.",
                                      metadata=_meta("key", "MA", case="upper", aliases=("function",),
                                                     references="functions.code"))
    description: Optional[pl.Utf8] = pa.Field(nullable=True, description="What the department does.",
                                              metadata=_meta("text", "Field-based scientific exchange with experts"))
    metadata: Optional[pl.Utf8] = _metadata_field()
    tenant: Optional[pl.Utf8] = _tenant_field()


class RolesSheet(_Sheet):
    code: pl.Utf8 = pa.Field(unique=True, str_matches=CODE, str_length={"max_value": 50}, description="Role code, unique.",
                             metadata=_meta("key", "SR-MSL", case="upper", aliases=("role_code",)))
    name: pl.Utf8 = pa.Field(str_length={"max_value": 255}, description="Role title.",
                             metadata=_meta("text", "Senior MSL", aliases=("role", "role_name", "title")))
    department_code: pl.Utf8 = pa.Field(description="The department the role sits in.",
                                        metadata=_meta("key", "MA-MSL", case="upper", aliases=("department",),
                                                       references="departments.code"))
    seniority_level: Optional[pl.Utf8] = pa.Field(nullable=True, isin=enums.SENIORITY_LEVEL,
                                                  description="entry, mid, senior, lead, head or executive.",
                                                  metadata=_meta("enum", "senior", aliases=("seniority",)))
    reports_to_code: Optional[pl.Utf8] = pa.Field(nullable=True, description="Code of the role this one reports to.",
                                                  metadata=_meta("key", "MSL-MGR", case="upper", aliases=("reports_to",),
                                                                 references="roles.code"))
    description: Optional[pl.Utf8] = pa.Field(nullable=True, description="What the role does.",
                                              metadata=_meta("text", "Leads scientific exchange with national KOLs"))
    metadata: Optional[pl.Utf8] = _metadata_field()
    tenant: Optional[pl.Utf8] = _tenant_field()


class ResponsibilitiesSheet(_Sheet):
    code: pl.Utf8 = pa.Field(unique=True, str_matches=CODE, str_length={"max_value": 50},
                             description="Responsibility code, unique.",
                             metadata=_meta("key", "MA-KOL-ENGAGEMENT", case="upper", aliases=("responsibility_code",)))
    name: pl.Utf8 = pa.Field(str_length={"max_value": 255}, description="Responsibility name.",
                             metadata=_meta("text", "KOL engagement", aliases=("responsibility",)))
    category: Optional[pl.Utf8] = pa.Field(nullable=True, str_length={"max_value": 50},
                                           description="Grouping, usually the function code.",
                                           metadata=_meta("text", "MA"))
    description: Optional[pl.Utf8] = pa.Field(nullable=True, description="What the responsibility involves.",
                                              metadata=_meta("text", "Plan and document scientific exchange with KOLs"))
    metadata: Optional[pl.Utf8] = _metadata_field()
    tenant: Optional[pl.Utf8] = _tenant_field()


class RoleResponsibilitiesSheet(_Sheet):
    role_code: pl.Utf8 = pa.Field(description="A role's code.",
                                  metadata=_meta("key", "SR-MSL", case="upper", aliases=("role",), references="roles.code"))
    responsibility_code: pl.Utf8 = pa.Field(description="A responsibility's code.",
                                            metadata=_meta("key", "MA-KOL-ENGAGEMENT", case="upper",
                                                           aliases=("responsibility",), references="responsibilities.code"))
    priority: Optional[pl.Int64] = pa.Field(nullable=True, ge=1, le=5, description="1 (core) to 5 (occasional).",
                                            metadata=_meta("int", "1"))


class PersonasSheet(_Sheet):
    persona_key: pl.Utf8 = pa.Field(unique=True, str_matches=SLUG, str_length={"max_value": 100},
                                    description="Persona key: lower-case words joined by hyphens, unique.",
                                    metadata=_meta("key", "sarah-chen-senior-msl", case="lower", aliases=("key", "persona", "persona_id")))
    name: pl.Utf8 = pa.Field(str_length={"max_value": 255}, description="The persona's name.",
                             metadata=_meta("text", "Dr Sarah Chen", aliases=("persona_name",)))
    title: pl.Utf8 = pa.Field(str_length={"max_value": 255}, description="Job title.",
                              metadata=_meta("text", "Senior MSL, Oncology", aliases=("job_title",)))
    function_code: pl.Utf8 = pa.Field(description="Function code; when empty, the department's function.",
                                      metadata=_meta("key", "MA", case="upper", aliases=("function",), references="functions.code",
                                                     derive=("department_code", "function_code")))
    department_code: pl.Utf8 = pa.Field(description="Department code; when empty, the role's department.",
                                        metadata=_meta("key", "MA-MSL", case="upper", aliases=("department",), references="departments.code",
                                                       derive=("role_code", "department_code")))
    role_code: pl.Utf8 = pa.Field(description="Role code in the org structure.",
                                  metadata=_meta("key", "SR-MSL", case="upper", aliases=("role",), references="roles.code"))
    seniority_level: Optional[pl.Utf8] = pa.Field(nullable=True, isin=enums.SENIORITY_LEVEL,
                                                  description="entry, mid, senior, lead, head or executive.",
                                                  metadata=_meta("enum", "senior", aliases=("seniority",)))
    years_experience: Optional[pl.Int64] = pa.Field(nullable=True, ge=0, le=60, description="Years of experience, 0–60.",
                                                    metadata=_meta("int", "9", aliases=("experience_years", "years")))
    description: Optional[pl.Utf8] = pa.Field(nullable=True, description="Who this persona is.",
                                              metadata=_meta("text", "Field medical expert covering academic oncology centres"))
    goals: pl.List(pl.Utf8) = pa.Field(nullable=True, description="Goals; several separated by ; or new lines.",
                                       metadata=_meta("list", "Build trusted relationships with experts; Generate evidence"))
    pain_points: pl.List(pl.Utf8) = pa.Field(nullable=True, description="Pain points; a list.",
                                             metadata=_meta("list", "Too little time with key customers", aliases=("pains",)))
    motivations: pl.List(pl.Utf8) = pa.Field(nullable=True, description="Motivations; a list.",
                                             metadata=_meta("list", "Patient impact; Scientific rigour"))
    tools_used: pl.List(pl.Utf8) = pa.Field(nullable=True, description="Tools used day to day; a list.",
                                            metadata=_meta("list", "Veeva CRM; PubMed", aliases=("tools",)))
    decision_authority: Optional[pl.Utf8] = pa.Field(nullable=True, isin=enums.DECISION_TYPE,
                                                     description="routine, tactical, strategic or critical.",
                                                     metadata=_meta("enum", "tactical"))
    visibility: pl.Utf8 = pa.Field(isin=enums.VISIBILITY_LEVEL, description="Who may see the persona.",
                                   metadata=_meta("enum", "tenant", default="tenant"))
    metadata: Optional[pl.Utf8] = _metadata_field()
    tenant: Optional[pl.Utf8] = _tenant_field()


class AgentsSheet(_Sheet):
    slug: pl.Utf8 = pa.Field(unique=True, str_matches=SLUG, str_length={"max_value": 150},
                             description="Agent slug: lower-case words joined by hyphens, unique.",
                             metadata=_meta("key", "oncology-msl-advisor", case="lower", aliases=("agent_slug", "key")))
    name: pl.Utf8 = pa.Field(str_length={"max_value": 255}, description="Display name.",
                             metadata=_meta("text", "Oncology MSL Advisor", aliases=("agent_name", "display_name")))
    tagline: Optional[pl.Utf8] = pa.Field(nullable=True, str_length={"max_value": 500}, description="One-line pitch.",
                                          metadata=_meta("text", "Prepares KOL meetings in minutes"))
    description: pl.Utf8 = pa.Field(description="What the agent does and for whom.",
                                    metadata=_meta("text", "Helps MSLs prepare scientific exchange with oncology KOLs"))
    agent_type: pl.Utf8 = pa.Field(isin=enums.AGENT_TYPE, description="specialist, orchestrator, … (agent_type).",
                                   metadata=_meta("enum", "specialist", aliases=("type",), default="specialist"))
    status: pl.Utf8 = pa.Field(isin=enums.AGENT_STATUS, description="Lifecycle status (agent_status).",
                               metadata=_meta("enum", "active", aliases=("agent_status",)))
    validation_status: pl.Utf8 = pa.Field(isin=enums.VALIDATION_STATUS, description="Review state (validation_status).",
                                          metadata=_meta("enum", "approved", default="pending"))
    domain_expertise: pl.Utf8 = pa.Field(isin=enums.DOMAIN_EXPERTISE, description="Main domain (domain_expertise).",
                                         metadata=_meta("enum", "medical", aliases=("domain",)))
    data_classification: pl.Utf8 = pa.Field(isin=enums.DATA_CLASSIFICATION,
                                            description="Most sensitive data the agent may handle.",
                                            metadata=_meta("enum", "internal", default="internal", aliases=("classification",)))
    visibility: pl.Utf8 = pa.Field(isin=enums.VISIBILITY_LEVEL, description="Who may see the agent.",
                                   metadata=_meta("enum", "public", default="tenant"))
    tier: pl.Int64 = pa.Field(ge=1, le=3, description="1 (flagship) to 3 (utility).",
                              metadata=_meta("int", "1", default=2))
    model: Optional[pl.Utf8] = pa.Field(nullable=True, str_length={"max_value": 100}, description="LLM the agent runs on.",
                                        metadata=_meta("text", "gpt-4o", aliases=("llm", "llm_model")))
    temperature: Optional[pl.Float64] = pa.Field(nullable=True, ge=0, le=2, description="Sampling temperature, 0–2.",
                                                 metadata=_meta("float", "0.3"))
    max_tokens: Optional[pl.Int64] = pa.Field(nullable=True, ge=1, le=200000, description="Maximum output tokens.",
                                              metadata=_meta("int", "4000"))
    capabilities: pl.List(pl.Utf8) = pa.Field(nullable=True, description="What it can do; a list.",
                                              metadata=_meta("list", "KOL engagement; Medical insights synthesis"))
    specializations: pl.List(pl.Utf8) = pa.Field(nullable=True, description="Niches; a list.",
                                                 metadata=_meta("list", "Immuno-oncology"))
    therapeutic_areas: pl.List(pl.Utf8) = pa.Field(nullable=True, description="Therapeutic areas; a list.",
                                                   metadata=_meta("list", "Oncology; Immunology", aliases=("tas",)))
    color: Optional[pl.Utf8] = pa.Field(nullable=True, str_matches=HEX_COLOUR, description="Avatar colour, #RRGGBB.",
                                        metadata=_meta("text", "#2CA02C", aliases=("colour",)))
    system_prompt: Optional[pl.Utf8] = pa.Field(nullable=True, description="The instructions the agent runs with.",
                                                metadata=_meta("text", "You are an oncology MSL advisor…",
                                                               aliases=("prompt", "instructions")))
    avatar_url: Optional[pl.Utf8] = pa.Field(nullable=True, str_matches=URL,
                                             description="Picture of the agent: an https:// URL or a /path.",
                                             metadata=_meta("text", "https://cdn.example.com/agents/msl.png",
                                                            aliases=("avatar_image",)))
    function_code: Optional[pl.Utf8] = pa.Field(nullable=True, description="Function the agent serves.",
                                                metadata=_meta("key", "MA", case="upper", aliases=("function",),
                                                               references="functions.code"))
    department_code: Optional[pl.Utf8] = pa.Field(nullable=True, description="Department the agent serves.",
                                                  metadata=_meta("key", "MA-MSL", case="upper", aliases=("department",),
                                                                 references="departments.code"))
    role_code: Optional[pl.Utf8] = pa.Field(nullable=True, description="Role the agent supports.",
                                            metadata=_meta("key", "SR-MSL", case="upper", aliases=("role",), references="roles.code"))
    metadata: Optional[pl.Utf8] = _metadata_field()
    tenant: Optional[pl.Utf8] = _tenant_field()


class JtbdsSheet(_Sheet):
    code: pl.Utf8 = pa.Field(unique=True, str_matches=JTBD_CODE, str_length={"max_value": 50},
                             description="JTBD code such as JTBD-MA-001, unique.",
                             metadata=_meta("key", "JTBD-MA-001", case="upper", aliases=("jtbd_code", "id")))
    title: pl.Utf8 = pa.Field(str_length={"max_value": 255}, description="Short title.",
                              metadata=_meta("text", "Prepare an advisory board", aliases=("name",)))
    job_statement: pl.Utf8 = pa.Field(description="When …, I want to …, so I can ….",
                                      metadata=_meta("text", "When a new data readout lands, I want to brief KOLs, so I can gather insight",
                                                     aliases=("statement", "job")))
    description: Optional[pl.Utf8] = pa.Field(nullable=True, description="Context.", metadata=_meta("text", "Quarterly"))
    functional_area: pl.Utf8 = pa.Field(isin=enums.FUNCTIONAL_AREA_TYPE, description="functional_area_type label.",
                                        metadata=_meta("enum", "Medical Affairs", aliases=("function", "area")))
    job_category: pl.Utf8 = pa.Field(isin=enums.JOB_CATEGORY_TYPE, description="job_category_type label.",
                                     metadata=_meta("enum", "strategic", aliases=("category",)))
    frequency: Optional[pl.Utf8] = pa.Field(nullable=True, isin=enums.FREQUENCY_TYPE, description="How often.",
                                            metadata=_meta("enum", "quarterly"))
    complexity: Optional[pl.Utf8] = pa.Field(nullable=True, isin=enums.COMPLEXITY_TYPE, description="How hard.",
                                             metadata=_meta("enum", "complex"))
    decision_type: Optional[pl.Utf8] = pa.Field(nullable=True, isin=enums.DECISION_TYPE, description="Decision weight.",
                                                metadata=_meta("enum", "strategic"))
    status: pl.Utf8 = pa.Field(isin=enums.JTBD_STATUS, description="jtbd_status label.",
                               metadata=_meta("enum", "active", default="draft"))
    importance: Optional[pl.Int64] = pa.Field(nullable=True, ge=1, le=10, description="Importance, 1–10.",
                                              metadata=_meta("int", "8"))
    satisfaction: Optional[pl.Int64] = pa.Field(nullable=True, ge=1, le=10, description="Current satisfaction, 1–10.",
                                                metadata=_meta("int", "4"))
    success_criteria: pl.List(pl.Utf8) = pa.Field(nullable=True, description="How success is judged; a list.",
                                                  metadata=_meta("list", "Insights logged within 48 h"))
    personas: pl.List(pl.Utf8) = pa.Field(nullable=True, description="Persona keys this job serves; a list.",
                                          metadata=_meta("list", "sarah-chen-senior-msl", aliases=("persona_keys",),
                                                         case="lower", references="personas.persona_key"))
    metadata: Optional[pl.Utf8] = _metadata_field()
    tenant: Optional[pl.Utf8] = _tenant_field()


@dataclass(frozen=True)
class SheetContract:
    """Where a sheet lives, its model, and its natural key."""

    workbook: str
    sheet: str
    model: type[pa.DataFrameModel]
    key: tuple[str, ...]
    optional: bool = False
    requires: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return self.sheet

    def prepare(self) -> None:
        """Build the model's schema and load pandera's polars backend, which pandera otherwise does at the first
        validation in a process (~0.1 s of imports): for a caller with idle time, e.g. waiting for the reader."""
        self.model.to_schema().get_backend(check_type=pl.DataFrame)


ORG_SHEETS = (
    SheetContract("org_structure.xlsx", "functions", FunctionsSheet, ("code",)),
    SheetContract("org_structure.xlsx", "departments", DepartmentsSheet, ("code",)),
    SheetContract("org_structure.xlsx", "roles", RolesSheet, ("code",)),
    SheetContract("org_structure.xlsx", "responsibilities", ResponsibilitiesSheet, ("code",)),
    SheetContract("org_structure.xlsx", "role_responsibilities", RoleResponsibilitiesSheet,
                  ("role_code", "responsibility_code")),
)
PERSONAS = SheetContract("personas.xlsx", "personas", PersonasSheet, ("persona_key",))
AGENTS = SheetContract("agents.xlsx", "agents", AgentsSheet, ("slug",))
JTBDS = SheetContract("jtbds.xlsx", "jtbds", JtbdsSheet, ("code",))

CONTRACTS: dict[str, SheetContract] = {c.sheet: c for c in (*ORG_SHEETS, PERSONAS, AGENTS, JTBDS)}
WORKBOOKS: dict[str, tuple[SheetContract, ...]] = {}
for _contract in CONTRACTS.values():
    WORKBOOKS.setdefault(_contract.workbook, ())
    WORKBOOKS[_contract.workbook] += (_contract,)
