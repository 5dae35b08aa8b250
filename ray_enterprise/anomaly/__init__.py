"""Streaming anomaly detection: detectors (vectorised numpy, river adapter, context, seasonal),
the monitors that keep one detector state per series, the point gate, the shard actors that
hold the monitors, the feed that carries points to them and the events they emit.

This ``__init__`` imports nothing, so a service worker that records metrics never loads numpy
detectors or river.
"""
