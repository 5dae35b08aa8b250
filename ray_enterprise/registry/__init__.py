"""The service registry: dependency graph, supervision and the RegistryActor."""
