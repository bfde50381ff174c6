"""Adapters both services share: HTTP (JSON errors, bodies, the worker, access by token or session, pages), MongoDB, logs."""
