"""The web UI: static files shipped in the package (``ui/``), served at ``/ui/``; ``/`` redirects there.

The files are public (a page with no data in it); everything the page shows comes from the API, with
the key the user typed (kept in the browser's ``sessionStorage``, sent as ``Authorization: Bearer``).
They are Starlette routes, not API routes: no OpenAPI entry and no access rule, like ``/openapi.json``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.staticfiles import StaticFiles

__all__ = ["UI_DIR", "mount_ui"]

UI_DIR = Path(__file__).with_name("ui")


async def _to_ui(_request: Request) -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


def mount_ui(app: FastAPI) -> None:
    """Serve ``ui/`` at ``/ui`` (``index.html`` for ``/ui/``) and redirect ``/`` to it."""
    app.add_route("/", _to_ui, methods=["GET"], include_in_schema=False)
    app.mount("/ui", StaticFiles(directory=UI_DIR, html=True), name="ui")
