"""Metrics, tracing, anomaly detection, alerts and the health score."""
