"""A changed workbook in raw/ (by content hash, not modification time) launches a run of just the assets that read
it and everything downstream of them; workbooks that changed together share one run."""

import json

import dagster as dg

from vital_pipelines.defs.knowledge.partitions import UNPARTITIONED_ASSETS
from vital_pipelines.defs.registry.resources import RegistrySource
from vital_pipelines.files import file_sha256

WORKBOOK_ASSETS = {
    "org_structure.xlsx": ["org_functions", "org_departments", "org_roles", "org_responsibilities"],
    "personas.xlsx": ["personas"],
    "agents.xlsx": ["agents"],
    "jtbds.xlsx": ["jobs_to_be_done"],
    "solution_industry_matrix.xlsx": ["solution_industry_matrix"],
}


def changed_workbooks(source: RegistrySource, cursor: str | None) -> tuple[dict[str, str], list[str]]:
    """(the current hash of every workbook present, the workbooks whose hash differs from the cursor's)."""
    seen = json.loads(cursor) if cursor else {}
    current = {name: file_sha256(source.workbook(name)) for name in WORKBOOK_ASSETS if source.workbook(name).is_file()}
    return current, sorted(name for name, sha in current.items() if seen.get(name) != sha)


@dg.sensor(target=UNPARTITIONED_ASSETS, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Reloads a registry workbook, and what depends on it, when its content changes.")
def raw_workbooks_changed(context: dg.SensorEvaluationContext, registry_source: RegistrySource):
    current, changed = changed_workbooks(registry_source, context.cursor)
    if not changed:
        return dg.SkipReason("no workbook in raw/ changed")
    # One run for everything that changed in this tick: assets shared downstream are materialised once.
    readers = [key for name in changed for key in WORKBOOK_ASSETS[name]]
    selection = dg.AssetSelection.assets(*readers).downstream() & UNPARTITIONED_ASSETS
    keys = sorted(selection.resolve(context.repository_def.asset_graph), key=lambda key: key.to_user_string())
    request = dg.RunRequest(run_key=";".join(f"{name}:{current[name]}" for name in changed), asset_selection=keys,
                            tags={"vital/trigger": ", ".join(f"raw/{name}" for name in changed)})
    return dg.SensorResult(run_requests=[request], cursor=json.dumps(current, sort_keys=True))
