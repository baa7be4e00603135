"""The operator dashboard at `/dashboard` on the api: a page that polls `/dashboard/state` each second."""

from wagerlab.platform.dashboard.routes import routes

__all__ = ["routes"]
