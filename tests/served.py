"""A real ``voxelprompt serve`` started in this process for a test: the service (models loaded
once) on a uvicorn thread on a free loopback port. Its own module, not a conftest: two
``conftest`` modules cannot both be imported by that name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from voxelprompt.server.launch import ServeSettings, ServerThread, build_service, make_app


@dataclass
class RunningServer:
    url: str
    service: object
    thread: ServerThread

    def stop(self) -> None:
        """Stop serving, then close the service (sessions' background threads end before exit)."""
        self.thread.stop()
        close = getattr(self.service, "close", None)
        if close is not None:
            close()


def start_server(datastore: Path, settings: ServeSettings | None = None, **thread_kwargs) -> RunningServer:
    """Build the service (models loaded once) and start it on a free loopback port."""
    settings = settings or ServeSettings(device="cpu")
    service = build_service(settings, datastore)
    thread = ServerThread(make_app(service, settings), **thread_kwargs).start()
    return RunningServer(thread.url, service, thread)
