"""The platform's REST API under `/api`; `wagerlab.platform.app.build_api_app` assembles it."""

from wagerlab.platform.api.context import ApiContext
from wagerlab.platform.api.routes import RequestCounter, routes

__all__ = ["ApiContext", "RequestCounter", "routes"]
