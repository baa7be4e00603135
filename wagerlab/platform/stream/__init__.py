"""The odds stream service (WebSocket): odds changes and bet status pushed to subscribers."""

from wagerlab.platform.stream.app import StreamService, build_stream_app, run_stream
from wagerlab.platform.stream.hub import StreamHub

__all__ = ["StreamHub", "StreamService", "build_stream_app", "run_stream"]
