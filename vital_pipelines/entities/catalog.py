"""Every registry entity, declared once (see `declaration`). Adding a column is one line here (and a migration when
the seed's table lacks it); adding an entity is one declaration (and its table's grants, provenance and history in a
migration)."""

from __future__ import annotations

from vital_pipelines import enums
from vital_pipelines.entities.declaration import Column, Entity, Link

SLUG = r"^[a-z0-9]+(-[a-z0-9]+)*$"
# A registry key as the platform writes it: hyphenated or snake_case (never normalised into another key).
KEY = r"^[a-z0-9]+([-_][a-z0-9]+)*$"
CODE = r"^[A-Z0-9]+(-[A-Z0-9]+)*$"
JTBD_CODE = r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$"
INDUSTRY_CODE = r"^[a-z][a-z0-9_]*$"
HEX_COLOUR = r"^#[0-9A-Fa-f]{6}$"
URL = r"^(https?://|/)\S+$"
VERSION = r"^\d+(\.\d+){0,3}$"
# How a failing cell is told what a pattern asks for.
PATTERN_WORDS = {
    SLUG: "lower-case letters and digits joined by single hyphens (like oncology-msl-advisor)",
    KEY: "lower-case letters and digits joined by single hyphens or underscores (like oncology-msl-advisor or "
         "oncology_msl_advisor)",
    CODE: "upper-case letters and digits joined by single hyphens (like MA-MSL)",
    JTBD_CODE: "a code like JTBD-MA-001",
    INDUSTRY_CODE: "lower-case letters, digits and underscores, starting with a letter (like medical_devices)",
    HEX_COLOUR: "a colour written #RRGGBB (like #1F77B4)",
    URL: "a web address starting https:// (or a /path), without spaces",
    VERSION: "a version such as 1.0.0",
}

# Spellings the platform's exports use for allowed values, offered by `map --suggest` before string similarity.
SENIORITY_SPELLINGS = (("junior", "entry"), ("associate", "entry"), ("intermediate", "mid"), ("mid_level", "mid"),
                       ("manager", "lead"), ("senior_manager", "lead"), ("director", "head"),
                       ("senior_director", "head"), ("vp", "executive"), ("svp", "executive"),
                       ("c_suite", "executive"), ("c_level", "executive"), ("chief", "executive"),
                       ("principal", "senior"), ("expert", "senior"))

TOOL_TYPES = ("api", "database", "search", "calculator", "document", "integration", "code")
AUTH_TYPES = ("none", "api_key", "oauth2", "basic", "service_account")
TEMPLATE_TYPES = ("document", "presentation", "email", "report", "workflow", "panel", "prompt")
TEMPLATE_FORMATS = ("markdown", "html", "json", "text", "docx", "pptx")
SOLUTION_TYPES = ("packaged", "custom", "hybrid")
PRICE_MODELS = ("subscription", "usage", "one_time")
MARKETPLACE_TIERS = ("free", "standard", "premium")


def _key(name: str, example: str, what: str, *, pattern: str = KEY, length: int = 150, case: str = "lower",
         aliases: tuple[str, ...] = ()) -> Column:
    return Column(name, "key", what, example, required=True, unique=True, pattern=pattern, max_length=length,
                  case=case, aliases=aliases)


def _name(example: str, what: str = "Display name.", *, aliases: tuple[str, ...] = (), unique: bool = False) -> Column:
    return Column("name", "text", what, example, required=True, max_length=255, aliases=aliases, unique=unique)


def _text(name: str, example: str, what: str, **more) -> Column:
    return Column(name, "text", what, example, **more)


def _enum(name: str, labels, example: str, what: str, *, sql_type: str | None = None, **more) -> Column:
    return Column(name, "enum", what, example, labels=tuple(labels), sql_type=sql_type, **more)


def _list(name: str, example: str, what: str, **more) -> Column:
    return Column(name, "list", what, example, **more)


def _reference(name: str, target: str, example: str, what: str, *, column: str | None = "", case: str = "upper",
               aliases: tuple[str, ...] = (), **more) -> Column:
    return Column(name, "key", what, example, column=column, case=case, references=target, aliases=aliases, **more)


def _links(name: str, target: str, example: str, what: str, link: Link, *, case: str = "lower",
           aliases: tuple[str, ...] = ()) -> Column:
    return Column(name, "list", what, example, references=target, link=link, case=case, aliases=aliases)


def _visibility(default: str = "tenant", example: str = "tenant") -> Column:
    return _enum("visibility", enums.VISIBILITY_LEVEL, example, "Who may see the row (visibility_level).",
                 sql_type="visibility_level", required=True, default=default)


def _active() -> Column:
    return Column("is_active", "bool", "Whether it is in use: yes or no.", "yes", required=True, default=True,
                  aliases=("active",))


def _metadata() -> Column:
    return Column("metadata", "json", "Source columns kept with the row, as a JSON object (a mapping file's "
                  "`metadata:` fills it).", '{"source_id": "42"}')


def _tenant() -> Column:
    return Column("tenant", "key", "Owning tenant's slug; empty = the platform.", "vital-platform", column=None,
                  pattern=SLUG, case="lower", aliases=("tenant_slug",))


ORG = "org_structure.xlsx"

FUNCTIONS = Entity(
    "functions", ORG, "org_functions", ("code",), owner=None, soft_delete=False,
    description="The organisation's functions (the schema seeds 14).",
    columns=(
        _key("code", "MA", "Function code, as in the schema's seed (COMM, MA, HEOR, …).", pattern=CODE, length=50,
             case="upper", aliases=("function_code",)),
        _name("Medical Affairs", "Function name.", aliases=("function", "function_name"), unique=True),
        _text("description", "MSL, Medical Communications, Evidence Generation", "What the function covers."),
        _text("color", "#2CA02C", "UI colour, #RRGGBB.", pattern=HEX_COLOUR, max_length=7, aliases=("colour",)),
        Column("display_order", "int", "Sort position in the UI.", "2", ge=1, le=1000, aliases=("order",)),
        _metadata(),
    ))

DEPARTMENTS = Entity(
    "departments", ORG, "org_departments", ("code",), description="Departments within functions.",
    columns=(
        _key("code", "MA-MSL", "Department code, unique.", pattern=CODE, length=50, case="upper",
             aliases=("department_code",)),
        _name("Medical Science Liaison", "Department name.", aliases=("department", "department_name")),
        _reference("function_code", "functions.code", "MA", "The function the department belongs to.",
                   column="function_id", required=True, aliases=("function",)),
        _text("description", "Field-based scientific exchange with experts", "What the department does."),
        _metadata(), _tenant(),
    ))

ROLES = Entity(
    "roles", ORG, "org_roles", ("code",), description="Roles within departments, with their reporting line.",
    columns=(
        _key("code", "SR-MSL", "Role code, unique.", pattern=CODE, length=50, case="upper", aliases=("role_code",)),
        _name("Senior MSL", "Role title.", aliases=("role", "role_name", "title")),
        _reference("department_code", "departments.code", "MA-MSL", "The department the role sits in.",
                   column="department_id", aliases=("department",)),
        _enum("seniority_level", enums.SENIORITY_LEVEL, "senior", "entry, mid, senior, lead, head or executive.",
              aliases=("seniority",), synonyms=SENIORITY_SPELLINGS),
        _reference("reports_to_code", "roles.code", "MSL-MGR", "Code of the role this one reports to.",
                   column="reports_to_role_id", aliases=("reports_to",)),
        _text("description", "Leads scientific exchange with national KOLs", "What the role does."),
        _metadata(), _tenant(),
    ))

RESPONSIBILITIES = Entity(
    "responsibilities", ORG, "org_responsibilities", ("code",), description="The work roles are responsible for.",
    columns=(
        _key("code", "MA-KOL-ENGAGEMENT", "Responsibility code, unique.", pattern=CODE, length=50, case="upper",
             aliases=("responsibility_code",)),
        _name("KOL engagement", "Responsibility name.", aliases=("responsibility",)),
        _text("category", "MA", "Grouping, usually the function code.", max_length=50),
        _text("description", "Plan and document scientific exchange with KOLs", "What the responsibility involves."),
        _metadata(), _tenant(),
    ))

ROLE_RESPONSIBILITIES = Entity(
    "role_responsibilities", ORG, "role_responsibilities", ("role_code", "responsibility_code"), links_only=True,
    asset="org_responsibilities", description="Which role carries which responsibility (a junction sheet).",
    columns=(
        _reference("role_code", "roles.code", "SR-MSL", "A role's code.", column="role_id", required=True,
                   aliases=("role",)),
        _reference("responsibility_code", "responsibilities.code", "MA-KOL-ENGAGEMENT", "A responsibility's code.",
                   column="responsibility_id", required=True, aliases=("responsibility",)),
        Column("priority", "int", "1 (core) to 5 (occasional).", "1", ge=1, le=5, sql_type="smallint"),
    ))

PERSONAS = Entity(
    "personas", "personas.xlsx", "personas", ("persona_key",),
    description="Professional personas, placed in the organisation.",
    columns=(
        _key("persona_key", "sarah-chen-senior-msl",
             "Persona key: lower-case words joined by hyphens (or underscores), unique.", length=100, aliases=("key", "persona", "persona_id")),
        _name("Dr Sarah Chen", "The persona's name.", aliases=("persona_name",)),
        _text("title", "Senior MSL, Oncology", "Job title.", required=True, max_length=255, aliases=("job_title",)),
        _reference("function_code", "functions.code", "MA", "Function code; when empty, the department's function.",
                   column="function_id", aliases=("function",), derive=("department_code", "function_code")),
        _reference("department_code", "departments.code", "MA-MSL",
                   "Department code; when empty, the role's department.", column="department_id",
                   aliases=("department",), derive=("role_code", "department_code")),
        _reference("role_code", "roles.code", "SR-MSL", "Role code (or title) in the org structure.",
                   column="role_id", aliases=("role",)),
        _enum("seniority_level", enums.SENIORITY_LEVEL, "senior", "entry, mid, senior, lead, head or executive.",
              aliases=("seniority",), synonyms=SENIORITY_SPELLINGS),
        Column("years_experience", "int", "Years of experience, 0–60.", "9", ge=0, le=60, sql_type="smallint",
               aliases=("experience_years", "years")),
        _text("description", "Field medical expert covering academic oncology centres", "Who this persona is."),
        _list("goals", "Build trusted relationships with experts; Generate evidence",
              "Goals; several separated by ; or new lines."),
        _list("pain_points", "Too little time with key customers", "Pain points; a list.", aliases=("pains",)),
        _list("motivations", "Patient impact; Scientific rigour", "Motivations; a list."),
        _list("tools_used", "Veeva CRM; PubMed", "Tools used day to day; a list.", aliases=("tools",)),
        _enum("decision_authority", enums.DECISION_TYPE, "tactical", "routine, tactical, strategic or critical.",
              sql_type="decision_type"),
        _visibility(),
        _metadata(), _tenant(),
    ))

TOOLS = Entity(
    "tools", "tools.xlsx", "tools", ("slug",), description="Tools agents can call (APIs, databases, search, …).",
    columns=(
        _key("slug", "pubmed-search", "Tool slug: lower-case words joined by hyphens (or underscores), unique.",
             aliases=("tool_slug", "key")),
        _name("PubMed search", aliases=("tool", "tool_name")),
        _text("description", "Searches PubMed for peer-reviewed literature", "What the tool does."),
        _enum("tool_type", TOOL_TYPES, "search", "api, database, search, calculator, document, integration or code.",
              required=True, default="integration", aliases=("type",)),
        _text("endpoint_url", "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/", "Where the tool is reached.",
              pattern=URL, aliases=("endpoint", "url")),
        _enum("auth_type", AUTH_TYPES, "none", "none, api_key, oauth2, basic or service_account (never the secret)."),
        _enum("data_classification", enums.DATA_CLASSIFICATION, "public", "Most sensitive data the tool handles.",
              sql_type="data_classification", required=True, default="internal", aliases=("classification",)),
        _visibility(), _active(), _metadata(), _tenant(),
    ))

SKILLS = Entity(
    "skills", "skills.xlsx", "skills", ("slug",), description="Skills agents have.",
    columns=(
        _key("slug", "literature-review", "Skill slug: lower-case words joined by hyphens (or underscores), unique.",
             aliases=("skill_slug", "key")),
        _name("Literature review", aliases=("skill", "skill_name")),
        _text("description", "Finds, screens and summarises the published evidence", "What the skill is."),
        _text("category", "research", "Grouping.", max_length=100),
        _visibility(), _active(), _metadata(), _tenant(),
    ))

AGENTS = Entity(
    "agents", "agents.xlsx", "agents", ("slug",), description="AI agents and their place in the organisation.",
    columns=(
        _key("slug", "oncology-msl-advisor", "Agent slug: lower-case words joined by hyphens (or underscores), unique.",
             aliases=("agent_slug", "key")),
        _name("Oncology MSL Advisor", aliases=("agent_name", "display_name")),
        _text("tagline", "Prepares KOL meetings in minutes", "One-line pitch.", max_length=500),
        _text("description", "Helps MSLs prepare scientific exchange with oncology KOLs",
              "What the agent does and for whom.", required=True),
        _enum("agent_type", enums.AGENT_TYPE, "specialist", "specialist, orchestrator, … (agent_type).",
              sql_type="agent_type", required=True, default="specialist", aliases=("type",)),
        _enum("status", enums.AGENT_STATUS, "active", "Lifecycle status (agent_status).", sql_type="agent_status",
              required=True, aliases=("agent_status",),
              synonyms=(("inactive", "deprecated"), ("retired", "archived"), ("beta", "testing"),
                        ("draft", "development"))),
        _enum("validation_status", enums.VALIDATION_STATUS, "approved", "Review state (validation_status).",
              sql_type="validation_status", required=True, default="pending"),
        _enum("domain_expertise", enums.DOMAIN_EXPERTISE, "medical", "Main domain (domain_expertise).",
              sql_type="domain_expertise", required=True, aliases=("domain",)),
        _enum("data_classification", enums.DATA_CLASSIFICATION, "internal",
              "Most sensitive data the agent may handle.", sql_type="data_classification", required=True,
              default="internal", aliases=("classification",)),
        _visibility(example="public"),
        Column("tier", "int", "1 (flagship) to 3 (utility).", "1", required=True, ge=1, le=3, default=2,
               sql_type="smallint"),
        _text("model", "gpt-4o", "LLM the agent runs on.", max_length=100, aliases=("llm", "llm_model")),
        Column("temperature", "float", "Sampling temperature, 0–2.", "0.3", ge=0, le=2),
        Column("max_tokens", "int", "Maximum output tokens.", "4000", ge=1, le=200000),
        _list("capabilities", "KOL engagement; Medical insights synthesis", "What it can do; a list."),
        _list("specializations", "Immuno-oncology", "Niches; a list."),
        _list("therapeutic_areas", "Oncology; Immunology", "Therapeutic areas; a list.", aliases=("tas",)),
        _text("color", "#2CA02C", "Avatar colour, #RRGGBB.", pattern=HEX_COLOUR, max_length=7, aliases=("colour",)),
        _text("system_prompt", "You are an oncology MSL advisor…", "The instructions the agent runs with.",
              aliases=("prompt", "instructions")),
        _text("avatar_url", "https://cdn.example.com/agents/msl.png",
              "Picture of the agent: an https:// URL or a /path.", pattern=URL, aliases=("avatar_image",)),
        _reference("function_code", "functions.code", "MA", "Function the agent serves.", aliases=("function",),
                   link=Link("agent_functions", "agent_id", "function_id")),
        _reference("department_code", "departments.code", "MA-MSL", "Department the agent serves.",
                   aliases=("department",), link=Link("agent_departments", "agent_id", "department_id")),
        _reference("role_code", "roles.code", "SR-MSL", "Role the agent supports.", aliases=("role",),
                   link=Link("agent_roles", "agent_id", "role_id")),
        _links("tools", "tools.slug", "pubmed-search", "Tools the agent may call; a list of tool slugs.",
               Link("agent_tools", "agent_id", "tool_id"), aliases=("tool_slugs",)),
        _links("skills", "skills.slug", "literature-review", "Skills the agent has; a list of skill slugs.",
               Link("agent_skills", "agent_id", "skill_id"), aliases=("skill_slugs",)),
        _metadata(), _tenant(),
    ))

JTBDS = Entity(
    "jtbds", "jtbds.xlsx", "jobs_to_be_done", ("code",), label="title", description="Jobs to be done and the personas they serve.",
    columns=(
        _key("code", "JTBD-MA-001", "JTBD code such as JTBD-MA-001, unique.", pattern=JTBD_CODE, length=50,
             case="upper", aliases=("jtbd_code", "id")),
        Column("title", "text", "Short title.", "Prepare an advisory board", required=True, max_length=255,
               aliases=("name",)),
        _text("job_statement", "When a new data readout lands, I want to brief KOLs, so I can gather insight",
              "When …, I want to …, so I can ….", required=True, aliases=("statement", "job")),
        _text("description", "Quarterly", "Context."),
        _enum("functional_area", enums.FUNCTIONAL_AREA_TYPE, "Medical Affairs", "functional_area_type label.",
              sql_type="functional_area_type", required=True, aliases=("function", "area")),
        _enum("job_category", enums.JOB_CATEGORY_TYPE, "strategic", "job_category_type label.",
              sql_type="job_category_type", required=True, aliases=("category",)),
        _enum("frequency", enums.FREQUENCY_TYPE, "quarterly", "How often.", sql_type="frequency_type",
              synonyms=(("annually", "yearly"), ("annual", "yearly"), ("ad_hoc", "as_needed"), ("adhoc", "as_needed"),
                        ("occasional", "as_needed"), ("biweekly", "weekly"), ("bi_weekly", "weekly"))),
        _enum("complexity", enums.COMPLEXITY_TYPE, "complex", "How hard.", sql_type="complexity_type",
              synonyms=(("low", "simple"), ("medium", "moderate"), ("high", "complex"), ("very_high", "expert"),
                        ("critical", "expert"))),
        _enum("decision_type", enums.DECISION_TYPE, "strategic", "Decision weight.", sql_type="decision_type"),
        _enum("status", enums.JTBD_STATUS, "active", "jtbd_status label.", sql_type="jtbd_status", required=True,
              default="draft"),
        Column("importance", "int", "Importance, 1–10.", "8", ge=1, le=10, sql_type="smallint"),
        Column("satisfaction", "int", "Current satisfaction, 1–10.", "4", ge=1, le=10, sql_type="smallint"),
        _list("success_criteria", "Insights logged within 48 h", "How success is judged; a list."),
        _visibility(),
        _links("personas", "personas.persona_key", "sarah-chen-senior-msl", "Persona keys this job serves; a list.",
               Link("jtbd_personas", "jtbd_id", "persona_id", position="is_primary"), aliases=("persona_keys",)),
        _metadata(), _tenant(),
    ))

PROMPTS = Entity(
    "prompts", "prompts.xlsx", "prompts", ("slug",), description="The prompt library: system prompts, instructions, "
    "examples and the conversation starters agents offer.",
    columns=(
        _key("slug", "kol-briefing-system", "Prompt slug: lower-case words joined by hyphens (or underscores), unique.",
             aliases=("prompt_slug", "key")),
        _name("KOL briefing (system)", aliases=("prompt_name", "title")),
        _enum("role_type", enums.PROMPT_ROLE_TYPE, "system", "What the prompt is for (prompt_role_type).",
              sql_type="prompt_role_type", required=True, aliases=("role", "type")),
        _text("content", "You prepare a KOL briefing from the latest publications…", "The prompt's text.",
              required=True, aliases=("prompt", "text", "body")),
        _text("description", "Briefing before a scientific exchange", "What the prompt is for."),
        _list("variables", "product; indication", "Placeholders the text uses; a list.", aliases=("placeholders",)),
        _enum("domain_expertise", enums.DOMAIN_EXPERTISE, "medical", "Domain (domain_expertise).",
              sql_type="domain_expertise", required=True, default="general", aliases=("domain",)),
        _enum("approval_status", enums.APPROVAL_STATUS, "approved", "Review state (approval_status).",
              sql_type="approval_status", required=True, default="draft"),
        _visibility(),
        _text("version", "1.0.0", "Version, such as 1.0.0.", required=True, default="1.0.0", pattern=VERSION,
              max_length=50),
        _list("tags", "oncology; kol", "Tags; a list."),
        _metadata(), _tenant(),
    ))

PROMPT_STARTERS = Entity(
    "prompt_starters", "prompts.xlsx", "agent_prompts", ("agent_slug",), links_only=True, optional=True,
    asset="prompts", description="The prompts each agent offers as conversation starters, one row per agent.",
    columns=(
        _reference("agent_slug", "agents.slug", "oncology-msl-advisor", "The agent's slug (or its name).",
                   column="agent_id", required=True, unique=True, case="lower", aliases=("agent", "agent_name")),
        _links("prompts", "prompts.slug", "kol-briefing-starter-1; kol-briefing-starter-2",
               "The prompts it offers, in order; a list of prompt slugs (or names, or the source system's ids).",
               Link("agent_prompts", "agent_id", "prompt_id", values=(("usage_role", "instruction",
                                                                       "prompt_role_type"),)),
               aliases=("starters", "prompt_slugs")),
    ))

TEMPLATES = Entity(
    "templates", "templates.xlsx", "templates", ("slug",), description="Document, email and report templates.",
    columns=(
        _key("slug", "advisory-board-report", "Template slug: lower-case words joined by hyphens (or underscores), unique.",
             aliases=("template_slug", "key")),
        _name("Advisory board report", aliases=("template", "template_name")),
        _enum("template_type", TEMPLATE_TYPES, "report",
              "document, presentation, email, report, workflow, panel or prompt.", required=True, aliases=("type",)),
        _text("description", "Summary of an advisory board's insights", "What the template is for."),
        _text("content", "# {{meeting}}\n\n## Insights", "The template's text.", required=True, aliases=("body",)),
        _enum("format", TEMPLATE_FORMATS, "markdown", "markdown, html, json, text, docx or pptx.", required=True,
              default="markdown"),
        _list("variables", "meeting; date", "Placeholders the text uses; a list."),
        _enum("approval_status", enums.APPROVAL_STATUS, "approved", "Review state (approval_status).",
              sql_type="approval_status", required=True, default="draft"),
        _visibility(),
        _text("version", "1.0.0", "Version, such as 1.0.0.", required=True, default="1.0.0", pattern=VERSION,
              max_length=50),
        _metadata(), _tenant(),
    ))

CAPABILITIES = Entity(
    "capabilities", "capabilities.xlsx", "capabilities", ("code",),
    description="Business capabilities and the jobs to be done they serve.",
    columns=(
        _key("code", "CAP-KOL-INSIGHT", "Capability code, unique.", pattern=CODE, length=50, case="upper",
             aliases=("capability_code", "key")),
        _name("KOL insight generation", aliases=("capability", "capability_name")),
        _text("description", "Turns field conversations into strategic insight", "What the capability is."),
        _text("category", "medical", "Grouping.", max_length=100),
        Column("maturity_level", "int", "Maturity, 1 (initial) to 5 (optimised).", "3", ge=1, le=5,
               sql_type="smallint", aliases=("maturity",)),
        _visibility(), _active(),
        _links("jtbds", "jtbds.code", "JTBD-MA-001", "Codes of the jobs to be done it serves; a list.",
               Link("capability_jtbd_mapping", "capability_id", "jtbd_id"), case="upper",
               aliases=("jtbd_codes", "jobs")),
        _metadata(), _tenant(),
    ))

INDUSTRIES = Entity(
    "industries", "industries.xlsx", "industries", ("code",), owner=None, soft_delete=False,
    description="The industries solutions are offered to (the schema seeds 6).",
    columns=(
        _key("code", "pharmaceuticals", "Industry code: lower-case letters, digits and _.", pattern=INDUSTRY_CODE,
             length=50, aliases=("industry_code", "key")),
        _name("Pharmaceutical", "Industry name.", aliases=("industry", "industry_name"), unique=True),
        _text("short_name", "Phrm", "The matrix's column label.", required=True, unique=True, max_length=20,
              aliases=("short", "label")),
        _text("description", "Research-based and generic medicines manufacturers", "What the industry covers."),
        Column("display_order", "int", "Sort position.", "1", ge=1, le=1000, aliases=("order",)),
        _active(), _metadata(),
    ))

SOLUTIONS = Entity(
    "solutions", "solutions.xlsx", "solutions", ("code",), owner="owner_tenant_id",
    description="Packaged solutions of the marketplace, with the agents and prompts they bundle.",
    columns=(
        _key("code", "LAUNCH-EX", "Solution code, unique.", pattern=CODE, length=50, case="upper",
             aliases=("solution_code", "key")),
        _name("Launch Excellence", "Solution name.", aliases=("solution", "solution_name")),
        _text("slug", "launch-excellence", "The marketplace's address: lower-case words joined by hyphens.",
              required=True, pattern=SLUG, max_length=100, case="lower", unique=True),
        _text("description", "End-to-end launch readiness", "What the solution does.", required=True),
        _text("short_description", "Launch readiness", "One line for the marketplace's cards."),
        _text("category", "commercial", "Grouping.", max_length=100),
        _enum("solution_type", SOLUTION_TYPES, "packaged", "packaged, custom or hybrid.", aliases=("type",)),
        _enum("price_model", PRICE_MODELS, "subscription", "subscription, usage or one_time."),
        _enum("marketplace_tier", MARKETPLACE_TIERS, "premium", "free, standard or premium.", aliases=("tier",)),
        Column("is_published", "bool", "Shown in the marketplace: yes or no.", "yes", required=True, default=False,
               aliases=("published",)),
        _list("benefits", "Faster launch; Fewer surprises", "Benefits; a list."),
        _list("use_cases", "Launch sequencing", "Use cases; a list."),
        _list("tags", "launch; commercial", "Tags; a list."),
        _visibility(example="public"),
        _links("agents", "agents.slug", "oncology-msl-advisor", "Slugs of the agents it bundles; a list.",
               Link("solution_agents", "solution_id", "agent_id", position="display_order"),
               aliases=("agent_slugs",)),
        _links("prompts", "prompts.slug", "kol-briefing-system", "Slugs of the prompts it bundles; a list.",
               Link("solution_prompts", "solution_id", "prompt_id", position="display_order"),
               aliases=("prompt_slugs",)),
        _metadata(), _tenant(),
    ))

# In load order: every entity after those it references.
ENTITIES: tuple[Entity, ...] = (FUNCTIONS, DEPARTMENTS, ROLES, RESPONSIBILITIES, ROLE_RESPONSIBILITIES, PERSONAS,
                                TOOLS, SKILLS, AGENTS, JTBDS, PROMPTS, PROMPT_STARTERS, TEMPLATES, CAPABILITIES,
                                INDUSTRIES, SOLUTIONS)
BY_SHEET: dict[str, Entity] = {e.sheet: e for e in ENTITIES}


def workbook_entities() -> dict[str, tuple[Entity, ...]]:
    """Workbook → its entities, in load order."""
    found: dict[str, tuple[Entity, ...]] = {}
    for entity in ENTITIES:
        found[entity.workbook] = found.get(entity.workbook, ()) + (entity,)
    return found


def upstream(workbook: str) -> tuple[str, ...]:
    """The other workbooks whose rows `workbook`'s rows reference, directly or through another, in load order."""
    found: set[str] = set()
    todo = [workbook]
    while todo:
        current = todo.pop()
        for entity in (e for e in ENTITIES if e.workbook == current):
            for target in [c.target for c in entity.references] + list(entity.after):
                other = BY_SHEET[target].workbook
                if other != workbook and other not in found:
                    found.add(other)
                    todo.append(other)
    order = list(workbook_entities())
    return tuple(sorted(found, key=order.index))


__all__ = ["BY_SHEET", "ENTITIES", "upstream", "workbook_entities"]
