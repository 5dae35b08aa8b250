"""Alerts: the pure alert state machine and its rules, routing, handlers and history, the alert
actor that runs them, and :mod:`ray_enterprise.alerts.client`, the one module the rest of the
system imports to raise or resolve an alert.

This ``__init__`` imports nothing, so ``import ray_enterprise.alerts.client`` from a low layer
(the registry, the config actor, a service worker) does not load the actor, SQLAlchemy or aiohttp.
"""
