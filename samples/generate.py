"""The deterministic generator of the sample workbooks in raw/ (and their ×10 / ×100 versions for benchmarks).

Everything derives from `organisation.py` with a fixed seed, so the same scale always gives byte-identical content.
Headers come from the contracts, so the workbooks always match what the pipeline expects.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import xlsxwriter

from samples import organisation as catalog
from vital_pipelines.spreadsheets.contracts import WORKBOOKS, SheetContract
from vital_pipelines.spreadsheets.templates import GENERATED_AT

AGENT_COUNT, PERSONA_COUNT, JTBD_COUNT = 254, 335, 338
SOLUTIONS = ["Launch Excellence", "Brand Excellence", "Strategic Foresight", "Commercial Excellence", "Medical Excellence"]
INDUSTRY_COLUMNS = ["Phrm", "Btch", "MedD", "Payers", "Digital", "Consult"]
UNAVAILABLE = {("Launch Excellence", "Payers"), ("Brand Excellence", "Payers"), ("Medical Excellence", "MedD"),
               ("Medical Excellence", "Payers"), ("Medical Excellence", "Digital")}

_AGENT_ROLES = [("Advisor", "specialist"), ("Analyst", "analyst"), ("Strategist", "strategist"),
                ("Reviewer", "validator"), ("Researcher", "researcher"), ("Synthesiser", "synthesizer")]
_TRIGGERS = ["a new data readout lands", "a competitor launches in my market", "a health authority asks a question",
             "the quarterly business review approaches", "a new indication is approved", "field teams report new insights",
             "a payer changes its access criteria", "a safety signal is detected", "the annual plan is due",
             "a partner proposes a new collaboration"]
_OUTCOMES = ["decisions rest on current evidence", "we stay compliant without slowing down", "the team acts before competitors do",
             "leadership gets a clear recommendation", "patients get access sooner", "nothing is lost between functions"]


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _org():
    departments, roles = [], []
    for function, items in catalog.ORGANISATION.items():
        for dept_code, dept_name, dept_roles in items:
            departments.append((dept_code, dept_name, function))
            for role_code, role_name, seniority in dept_roles:
                roles.append((role_code, role_name, dept_code, function, seniority))
    responsibilities = [(f"{function}-{slugify(name).upper()}", name, function, description)
                        for function, items in catalog.RESPONSIBILITIES.items() for name, description in items]
    return departments, roles, responsibilities


def write_workbook(path: Path, sheets: dict[str, list[list]], *, hidden: tuple[str, ...] = (),
                   bold_header: bool = False) -> Path:
    """Write rows (header first) to sheets; None leaves a cell empty and a str is always stored as text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False,
                                               "strings_to_urls": False})
    workbook.set_properties({"title": path.stem, "author": "vital-pipelines generator", "created": GENERATED_AT})
    bold = workbook.add_format({"bold": True})
    for name, rows in sheets.items():
        sheet = workbook.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is None or value == "":
                    continue
                if isinstance(value, bool):
                    sheet.write_boolean(r, c, value)
                elif isinstance(value, (int, float)):
                    sheet.write_number(r, c, value)
                else:
                    sheet.write_string(r, c, str(value), bold if bold_header and r == 0 else None)
        if bold_header:
            sheet.freeze_panes(1, 0)
        if name in hidden:
            sheet.hide()
    workbook.close()
    return path


def _write(path: Path, sheets: dict[str, tuple[list[str], list[list]]]) -> None:
    write_workbook(path, {name: [header, *rows] for name, (header, rows) in sheets.items()}, bold_header=True)


def _header(contract: SheetContract) -> list[str]:
    return list(contract.schema.columns)


def _rows(contract: SheetContract, records: list[dict]) -> list[list]:
    header = _header(contract)
    return [[record.get(column) for column in header] for record in records]


def org_records():
    departments, roles, responsibilities = _org()
    functions = [{"code": code, "name": name, "description": description, "color": color, "display_order": i}
                 for i, (code, (name, description, color)) in enumerate(catalog.FUNCTIONS.items(), start=1)]
    manager = {}
    for role_code, _name, dept, _function, seniority in roles:
        if seniority in ("lead", "head", "executive"):
            manager.setdefault(dept, role_code)
    dept_rows = [{"code": c, "name": n, "function_code": f,
                  "description": f"{n} within {catalog.FUNCTIONS[f][0]}"} for c, n, f in departments]
    role_rows = [{"code": c, "name": n, "department_code": d, "seniority_level": s,
                  "reports_to_code": manager.get(d) if manager.get(d) != c else None,
                  "description": f"{n} in {next(x[1] for x in departments if x[0] == d)}"}
                 for c, n, d, _f, s in roles]
    resp_rows = [{"code": c, "name": n, "category": f, "description": d} for c, n, f, d in responsibilities]
    links = []
    for role_code, _n, _d, function, _s in roles:
        own = [r for r in responsibilities if r[2] == function]
        rng = random.Random(role_code)
        for priority, resp in enumerate(rng.sample(own, k=min(3, len(own))), start=1):
            links.append({"role_code": role_code, "responsibility_code": resp[0], "priority": priority})
    return {"functions": functions, "departments": dept_rows, "roles": role_rows,
            "responsibilities": resp_rows, "role_responsibilities": links}


def persona_records(scale: int = 1) -> list[dict]:
    _departments, roles, _resp = _org()
    rng = random.Random(20251113)
    records = []
    for i in range(PERSONA_COUNT * scale):
        role_code, role_name, dept, function, seniority = roles[i % len(roles)]
        first, last = catalog.FIRST_NAMES[(i * 7) % len(catalog.FIRST_NAMES)], catalog.LAST_NAMES[(i * 11) % len(catalog.LAST_NAMES)]
        area = catalog.THERAPEUTIC_AREAS[(i // len(roles)) % len(catalog.THERAPEUTIC_AREAS)]
        suffix = "" if i < PERSONA_COUNT else f"-{i // PERSONA_COUNT}"
        records.append({
            "persona_key": f"{slugify(first)}-{slugify(last)}-{slugify(role_name)}-{slugify(area)}{suffix}",
            "name": f"{first} {last}", "title": f"{role_name}, {area}",
            "function_code": function, "department_code": dept, "role_code": role_code,
            "seniority_level": seniority, "years_experience": {"entry": 2, "mid": 6, "senior": 10, "lead": 13,
                                                               "head": 16, "executive": 22}[seniority] + i % 4,
            "description": f"{role_name} working in {area.lower()}, part of {catalog.FUNCTIONS[function][0]}.",
            "goals": "; ".join(rng.sample(catalog.GOALS, 3)),
            "pain_points": "; ".join(rng.sample(catalog.PAIN_POINTS, 2)),
            "motivations": "; ".join(rng.sample(catalog.MOTIVATIONS, 2)),
            "tools_used": "; ".join(rng.sample(catalog.TOOLS, 3)),
            "decision_authority": {"entry": "routine", "mid": "tactical", "senior": "tactical", "lead": "strategic",
                                   "head": "strategic", "executive": "critical"}[seniority],
            "visibility": "tenant",
        })
    return records


def agent_records(scale: int = 1) -> list[dict]:
    _departments, roles, responsibilities = _org()
    rng = random.Random(254)
    records = []
    for i in range(AGENT_COUNT * scale):
        code, resp_name, function, description = responsibilities[i % len(responsibilities)]
        noun, agent_type = _AGENT_ROLES[(i // len(responsibilities)) % len(_AGENT_ROLES)]
        area = catalog.THERAPEUTIC_AREAS[(i * 3) % len(catalog.THERAPEUTIC_AREAS)]
        function_roles = [r for r in roles if r[3] == function]
        role = function_roles[i % len(function_roles)]
        suffix = "" if i < AGENT_COUNT else f"-{i // AGENT_COUNT}"
        name = f"{resp_name} {noun}" if i % 2 else f"{area} {resp_name} {noun}"
        records.append({
            "slug": slugify(name) + suffix, "name": name,
            "tagline": f"{description} — faster and with sources.",
            "description": f"{name} supports the {role[1]} in {catalog.FUNCTIONS[function][0]}: {description.lower()}, "
                           f"with a focus on {area.lower()}.",
            "agent_type": agent_type,
            "status": ["active", "active", "active", "testing", "development", "maintenance"][i % 6],
            "validation_status": ["approved", "approved", "in_review", "pending"][i % 4],
            "domain_expertise": catalog.DOMAIN_EXPERTISE[function],
            "data_classification": ["internal", "confidential", "internal", "public"][i % 4],
            "visibility": ["public", "tenant", "organization"][i % 3],
            "tier": 1 + i % 3, "model": ["gpt-4o", "claude-sonnet", "gpt-4o-mini"][i % 3],
            "temperature": [0.2, 0.3, 0.5, 0.7][i % 4], "max_tokens": [2000, 4000, 8000][i % 3],
            "capabilities": "; ".join([resp_name] + rng.sample([r[1] for r in responsibilities if r[2] == function and r[1] != resp_name], 1)),
            "specializations": area if i % 2 == 0 else None,
            "therapeutic_areas": "; ".join(sorted({area, catalog.THERAPEUTIC_AREAS[(i + 4) % 10]})),
            "color": catalog.FUNCTIONS[function][2],
            "function_code": function, "department_code": role[2], "role_code": role[0],
            "tools": "; ".join(slug for slug, _n, _t, functions in _TOOLS if function in functions or not functions),
            "skills": "; ".join(dict.fromkeys([_SKILLS[i % len(_SKILLS)][0], _SKILLS[(i * 7 + 3) % len(_SKILLS)][0]])),
        })
    return records


# (slug, name, tool type, the functions whose agents use it: empty = every agent)
_TOOLS = [("pubmed-search", "PubMed search", "search", ()), ("clinicaltrials-gov", "ClinicalTrials.gov registry", "api",
          ("CLIN", "MA", "RND", "REG")), ("veeva-crm", "Veeva CRM", "integration", ("COMM", "MA")),
          ("veeva-vault", "Veeva Vault RIM", "document", ("REG", "QA")), ("iqvia-sales-data", "IQVIA sales data",
          "database", ("COMM", "HEOR", "FIN")), ("budget-impact-calculator", "Budget impact calculator", "calculator",
          ("HEOR", "FIN")), ("argus-safety", "Argus Safety", "database", ("QA",)), ("medidata-rave", "Medidata Rave",
          "database", ("CLIN",)), ("ema-epar-search", "EMA EPAR search", "search", ("REG", "HEOR", "MA")),
          ("python-sandbox", "Python sandbox", "code", ("IT", "RND", "CLIN"))]
_SKILLS = [("literature-review", "Literature review", "research"), ("evidence-synthesis", "Evidence synthesis", "research"),
           ("regulatory-writing", "Regulatory writing", "writing"), ("scientific-exchange", "Scientific exchange", "medical"),
           ("health-economic-modelling", "Health economic modelling", "analytics"),
           ("forecasting", "Forecasting", "analytics"), ("gcp-compliance-check", "GCP compliance check", "quality"),
           ("signal-evaluation", "Signal evaluation", "safety"), ("stakeholder-mapping", "Stakeholder mapping", "strategy"),
           ("competitive-intelligence", "Competitive intelligence", "strategy"), ("data-visualisation", "Data visualisation",
           "analytics"), ("plain-language-summary", "Plain-language summary", "writing")]
_TEMPLATES = [("advisory-board-report", "Advisory board report", "report"), ("msl-insight-email", "MSL insight email", "email"),
              ("hta-dossier-outline", "HTA dossier outline", "document"), ("launch-readiness-deck", "Launch readiness deck",
              "presentation"), ("deviation-capa-form", "Deviation and CAPA form", "document"),
              ("panel-briefing", "Expert panel briefing", "panel"), ("study-synopsis", "Clinical study synopsis", "document"),
              ("kol-meeting-prompt", "KOL meeting preparation", "prompt")]
STARTERS_PER_AGENT = 2


def tool_records() -> list[dict]:
    return [{"slug": slug, "name": name, "tool_type": kind, "description": f"{name} for "
             + (", ".join(catalog.FUNCTIONS[f][0] for f in functions) if functions else "every agent"),
             "data_classification": "public" if kind == "search" else "internal", "auth_type":
             "none" if kind in ("search", "calculator", "code") else "oauth2", "visibility": "tenant", "is_active": True}
            for slug, name, kind, functions in _TOOLS]


def skill_records() -> list[dict]:
    return [{"slug": slug, "name": name, "category": category, "description": f"{name}, done to the house standard",
             "visibility": "tenant", "is_active": True} for slug, name, category in _SKILLS]


def prompt_records(scale: int = 1) -> tuple[list[dict], list[dict]]:
    """A system prompt per agent and a few conversation starters for it; each agent's starters as a list."""
    prompts, starters = [], []
    for agent in agent_records(scale):
        slug = agent["slug"]
        prompts.append({"slug": f"{slug}-system", "name": f"{agent['name']} (system)", "role_type": "system",
                        "content": f"You are the {agent['name']}. {agent['description']} Cite your sources.",
                        "domain_expertise": agent["domain_expertise"], "approval_status": "approved",
                        "visibility": "tenant", "version": "1.0.0", "tags": agent["therapeutic_areas"]})
        for n in range(1, STARTERS_PER_AGENT + 1):
            task = agent["capabilities"].split("; ")[(n - 1) % len(agent["capabilities"].split("; "))]
            prompts.append({"slug": f"{slug}-starter-{n}", "name": f"{agent['name']} – starter {n}",
                            "role_type": "instruction", "content": f"Help me with {task.lower()} for {{{{product}}}}.",
                            "variables": "product", "domain_expertise": agent["domain_expertise"],
                            "approval_status": "approved", "visibility": "tenant", "version": "1.0.0"})
        starters.append({"agent_slug": slug, "prompts": "; ".join(f"{slug}-starter-{n}"
                                                                  for n in range(1, STARTERS_PER_AGENT + 1))})
    return prompts, starters


def template_records() -> list[dict]:
    return [{"slug": slug, "name": name, "template_type": kind, "description": f"The house {name.lower()}",
             "content": f"# {name}\n\n{{{{title}}}}\n\n## Summary\n\n{{{{summary}}}}", "format": "markdown",
             "variables": "title; summary", "approval_status": "approved", "visibility": "tenant", "version": "1.0.0"}
            for slug, name, kind in _TEMPLATES]


def capability_records(jtbds: list[dict]) -> list[dict]:
    _departments, _roles, responsibilities = _org()
    by_function: dict[str, list[str]] = {}
    for j in jtbds:
        by_function.setdefault(j["code"].split("-")[1], []).append(j["code"])
    return [{"code": f"CAP-{code}", "name": f"{name} capability", "description": description,
             "category": catalog.DOMAIN_EXPERTISE[function], "maturity_level": 1 + i % 5, "visibility": "tenant",
             "is_active": True, "jtbds": "; ".join(by_function.get(function, [])[i % 3::7][:3])}
            for i, (code, name, function, description) in enumerate(responsibilities)]


# The seed's industries and solutions (21_seed_data.sql) as a steward would keep them: the same values, so that the
# first load takes the seed rows over without rewriting them (only the bundled agents and prompts are added).
_INDUSTRIES = [("pharmaceuticals", "Pharmaceutical", "Phrm", "Research-based and generic medicines manufacturers"),
               ("biotechnology", "Biotechnology", "Btch", "Biologics, cell and gene therapy, platform biotechs"),
               ("medical_devices", "Medical Devices", "MedD", "Devices, diagnostics and combination products"),
               ("healthcare_payers", "Healthcare Payers", "Payers", "Insurers, HTA bodies and integrated payer organisations"),
               ("digital_health", "Digital Health", "Digital", "Digital therapeutics, health apps and data platforms"),
               ("healthcare_consulting", "Healthcare Consulting", "Consult",
                "Life-science strategy, HEOR and commercial consultancies")]
_SOLUTIONS = [
    ("LAUNCH-EX", "Launch Excellence", "launch-excellence", "commercial", ("COMM", "HEOR"), "premium",
     "End-to-end launch readiness: market shaping, launch sequencing, field readiness and early performance tracking."),
    ("BRAND-EX", "Brand Excellence", "brand-excellence", "commercial", ("COMM",), "premium",
     "Brand planning, positioning, omnichannel engagement and lifecycle management for in-market brands."),
    ("PULSE", "Strategic Foresight (PULSE)", "strategic-foresight", "strategic", ("BD", "RND"), "standard",
     "Horizon scanning, competitive intelligence and scenario planning for portfolio and pipeline decisions."),
    ("COMM-EX", "Commercial Excellence", "commercial-excellence", "commercial", ("COMM", "FIN"), "standard",
     "Sales force effectiveness, key account management, pricing and contracting, and commercial analytics."),
    ("MED-EX", "Medical Excellence", "medical-excellence", "medical", ("MA",), "premium",
     "Medical strategy, MSL excellence, evidence generation and scientific communication."),
]


def industry_records() -> list[dict]:
    return [{"code": code, "name": name, "short_name": short, "description": description, "display_order": i,
             "is_active": True} for i, (code, name, short, description) in enumerate(_INDUSTRIES, start=1)]


def solution_records(agents: list[dict]) -> list[dict]:
    return [{"code": code, "name": name, "slug": slug, "category": category, "solution_type": "packaged",
             "price_model": "subscription", "marketplace_tier": tier, "is_published": True, "visibility": "public",
             "description": description,
             "agents": "; ".join([a["slug"] for a in agents if a["function_code"] in functions and a["tier"] == 1][:6]),
             "prompts": "; ".join([f"{a['slug']}-system" for a in agents if a["function_code"] in functions
                                   and a["tier"] == 1][:6])}
            for code, name, slug, category, functions, tier, description in _SOLUTIONS]


def jtbd_records(scale: int = 1, personas: list[dict] | None = None) -> list[dict]:
    _departments, _roles, responsibilities = _org()
    personas = personas or persona_records(scale)
    by_function: dict[str, list[str]] = {}
    for p in personas:
        by_function.setdefault(p["function_code"], []).append(p["persona_key"])
    counters: dict[str, int] = {}
    records = []
    for i in range(JTBD_COUNT * scale):
        _code, resp_name, function, description = responsibilities[i % len(responsibilities)]
        counters[function] = counters.get(function, 0) + 1
        trigger = _TRIGGERS[(i // len(responsibilities)) % len(_TRIGGERS)]
        outcome = _OUTCOMES[i % len(_OUTCOMES)]
        candidates = by_function[function]
        served = [candidates[(i * 5 + k * 17) % len(candidates)] for k in range(1 + i % 3)]
        importance = 5 + i % 6
        records.append({
            "code": f"JTBD-{function}-{counters[function]:03d}",
            "title": f"{resp_name} when {trigger}",
            "job_statement": f"When {trigger}, I want to {description[0].lower() + description[1:]}, so I can make sure {outcome}.",
            "description": f"{resp_name} in {catalog.FUNCTIONS[function][0]}.",
            "functional_area": catalog.FUNCTIONAL_AREA[function],
            "job_category": ["strategic", "operational", "analytical", "collaborative", "tactical"][i % 5],
            "frequency": ["weekly", "monthly", "quarterly", "as_needed", "yearly"][i % 5],
            "complexity": ["moderate", "complex", "expert", "simple"][i % 4],
            "decision_type": ["tactical", "strategic", "routine", "critical"][i % 4],
            "status": ["active", "active", "draft"][i % 3],
            "importance": importance, "satisfaction": max(1, importance - 1 - i % 5),
            "success_criteria": f"Done within the agreed timeline; Reviewed by {catalog.FUNCTIONS[function][0]} lead",
            "personas": "; ".join(dict.fromkeys(served)),
        })
    return records


def matrix_rows() -> tuple[list[str], list[list], list[list]]:
    header = ["Solution / Industry", *INDUSTRY_COLUMNS]
    availability = [[s, *["-" if (s, ind) in UNAVAILABLE else "✓" for ind in INDUSTRY_COLUMNS]] for s in SOLUTIONS]
    fit = [[s, *[None if (s, ind) in UNAVAILABLE else 6 + (i + j) % 5 for j, ind in enumerate(INDUSTRY_COLUMNS)]]
           for i, s in enumerate(SOLUTIONS)]
    return header, availability, fit


def generate(out_dir: Path, scale: int = 1) -> list[Path]:
    """Write every registry workbook at `scale` into `out_dir`; returns their paths."""
    out_dir = Path(out_dir)
    org = org_records()
    personas = persona_records(scale)
    agents, jtbds = agent_records(scale), jtbd_records(scale, personas)
    prompts, starters = prompt_records(scale)
    records = {**org, "personas": personas, "agents": agents, "jtbds": jtbds, "tools": tool_records(),
               "skills": skill_records(), "prompts": prompts, "prompt_starters": starters,
               "templates": template_records(), "capabilities": capability_records(jtbds),
               "industries": industry_records(), "solutions": solution_records(agents)}
    paths = {workbook: {c.sheet: (_header(c), _rows(c, records[c.sheet])) for c in contracts}
             for workbook, contracts in WORKBOOKS.items()}
    header, availability, fit = matrix_rows()
    paths["solution_industry_matrix.xlsx"] = {"matrix": (header, availability), "fit_scores": (header, fit)}
    written = []
    for name, sheets in paths.items():
        _write(out_dir / name, sheets)
        written.append(out_dir / name)
    return written
