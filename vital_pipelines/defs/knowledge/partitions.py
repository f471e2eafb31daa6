"""One dynamic partition per knowledge document, keyed by the document's slug."""

import dagster as dg

knowledge_documents = dg.DynamicPartitionsDefinition(name="knowledge_documents")
