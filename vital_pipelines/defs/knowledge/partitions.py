"""One dynamic partition per knowledge document, keyed by the document's slug."""

import dagster as dg

knowledge_documents = dg.DynamicPartitionsDefinition(name="knowledge_documents")


def partition_range(instance: dg.DagsterInstance) -> str | None:
    """`first...last` over every registered document, for `dagster asset materialize --partition-range`."""
    keys = instance.get_dynamic_partitions(knowledge_documents.name)
    return f"{keys[0]}...{keys[-1]}" if keys else None


if __name__ == "__main__":
    print(partition_range(dg.DagsterInstance.get()) or "")
