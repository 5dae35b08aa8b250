"""Example services that do real work; ``cluster/demo.yaml`` wires them into an application.

database (KeyValueStore) <- cache (CacheService) <- search (SearchService) <- api (ApiService),
plus a worker (IndexWorker) that indexes new documents and an exporter (StatsExporter) that
gathers every service's counters into a JSON snapshot.
"""
