"""Watches assets/knowledge/: keeps one dynamic partition per document and launches the materialisation of new or
changed documents (by content hash); a removed document's partition is dropped and its chunks are deleted."""

import hashlib
import json

import dagster as dg

from vital_pipelines.defs.knowledge.partitions import knowledge_documents, range_tags
from vital_pipelines.defs.knowledge.resources import KnowledgeSource
from vital_pipelines.files import file_sha256


@dg.sensor(target=dg.AssetSelection.assets("knowledge_sources", "knowledge_chunks"), minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Embeds new and edited knowledge documents and removes deleted ones.")
def knowledge_documents_changed(context: dg.SensorEvaluationContext, knowledge_source: KnowledgeSource):
    seen = json.loads(context.cursor) if context.cursor else {}
    current = {slug: file_sha256(path) for slug, path in knowledge_source.documents().items()}
    partitions = context.instance.get_dynamic_partitions(knowledge_documents.name)
    registered = set(partitions)
    added = sorted(set(current) - registered)
    removed = sorted(registered - set(current))
    changed = sorted(slug for slug, sha in current.items() if seen.get(slug) != sha)
    if not (added or removed or changed):
        return dg.SkipReason("no document in assets/knowledge/ changed")
    requests = []
    if len(changed) == 1:
        slug = changed[0]
        requests.append(dg.RunRequest(run_key=f"{slug}:{current[slug]}", partition_key=slug,
                                      asset_selection=[dg.AssetKey("knowledge_chunks")],
                                      tags={"vital/trigger": f"assets/knowledge/{slug}"}))
    elif changed:
        # One run over every partition loads the model once; unchanged documents are skipped by their hash.
        ordered = [key for key in partitions if key not in removed] + added
        requests.append(dg.RunRequest(
            run_key=f"documents:{hashlib.sha256(json.dumps(current, sort_keys=True).encode()).hexdigest()[:16]}",
            asset_selection=[dg.AssetKey("knowledge_chunks")],
            tags={"vital/trigger": f"assets/knowledge ({len(changed)} documents)", **range_tags(ordered[0], ordered[-1])}))
    if removed:
        requests.append(dg.RunRequest(run_key=f"removed:{','.join(removed)}:{len(current)}",
                                      asset_selection=[dg.AssetKey("knowledge_sources")],
                                      tags={"vital/trigger": "assets/knowledge (documents removed)"}))
    partition_requests = []
    if added:
        partition_requests.append(knowledge_documents.build_add_request(added))
    if removed:
        partition_requests.append(knowledge_documents.build_delete_request(removed))
    return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=partition_requests,
                           cursor=json.dumps(current, sort_keys=True))
