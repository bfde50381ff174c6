"""GET /health (liveness) and GET /ready (readiness with per-dependency status)."""

from flask import Blueprint

from .services import services

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    """The process is up and serving requests."""
    return {"status": "ok"}


@bp.get("/ready")
def ready():
    """200 when Kafka and MongoDB both answer, 503 naming the ones that do not."""
    checks = {name: ("up" if check() else "down") for name, check in services().checks.items()}
    all_up = all(state == "up" for state in checks.values())
    return {"status": "ready" if all_up else "unavailable", "dependencies": checks}, 200 if all_up else 503
