"""The registries maintained in raw/*.xlsx: org structure, personas, agents, JTBDs, the solution × industry matrix."""
