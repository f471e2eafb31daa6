"""One dynamic partition per knowledge document, keyed by the document's slug; and the asset selections that
split the partitioned knowledge chunks from everything else (jobs, the schedule and the sensors launch them apart)."""

import dagster as dg

knowledge_documents = dg.DynamicPartitionsDefinition(name="knowledge_documents")
KNOWLEDGE_CHUNKS = dg.AssetSelection.assets("knowledge_chunks")
UNPARTITIONED_ASSETS = dg.AssetSelection.all() - KNOWLEDGE_CHUNKS


def range_tags(first: str, last: str) -> dict[str, str]:
    """Run tags that make one run cover the partitions first..last (the asset's single-run backfill policy)."""
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def document_range(instance: dg.DagsterInstance) -> tuple[str, str] | None:
    """The first and last registered document, or None when there is none."""
    keys = instance.get_dynamic_partitions(knowledge_documents.name)
    return (keys[0], keys[-1]) if keys else None


if __name__ == "__main__":
    bounds = document_range(dg.DagsterInstance.get())
    print(f"{bounds[0]}...{bounds[1]}" if bounds else "")
