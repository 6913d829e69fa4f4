"""The dashboard page: static files of the package (``static/``, no build step), served by the
HTTP API's app at ``<prefix>/`` and, by the standalone server, at ``/`` too.

The page reads only the JSON API, through paths relative to ``<html data-api>``: ``./`` when it
is served at ``<prefix>/``, ``tasks/`` (the prefix) when served at ``/``. Being relative, they
also work when a user mounts the app under a path of their own (ASGI ``root_path``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
#: The page changes with the package, so browsers revalidate it (and its scripts) every load.
NO_CACHE = {"Cache-Control": "no-cache"}


@cache
def _template() -> str:
    return (STATIC / "index.html").read_text(encoding="utf-8")


def render_page(api: str, static: str) -> str:
    """index.html with the relative API and static-file paths filled in."""
    return _template().replace("{{api}}", api).replace("{{static}}", static)


def _page(api: str, static: str):  # noqa: ANN202 - a Starlette endpoint
    async def endpoint(request: Request) -> Response:
        return HTMLResponse(render_page(api, static), headers=NO_CACHE)

    return endpoint


class _Static(StaticFiles):
    async def get_response(self, path: str, scope) -> Response:  # noqa: ANN001
        response = await super().get_response(path, scope)
        response.headers.update(NO_CACHE)
        return response


def dashboard_routes(prefix: str, *, at_root: bool = False) -> list[BaseRoute]:
    """Routes of the page under ``prefix`` (e.g. ``/tasks``: the page at ``/tasks/``, its files
    at ``/tasks/static/``). ``at_root`` also serves the page at ``/`` (standalone server)."""
    prefix = prefix.rstrip("/")
    routes: list[BaseRoute] = [
        Route(prefix + "/", _page("./", "static/"), methods=["GET"], name="dashboard"),
        Mount(prefix + "/static", app=_Static(directory=STATIC), name="dashboard-static"),
    ]
    if prefix:

        async def slash(request: Request) -> Response:
            return RedirectResponse(request.url.replace(path=request.url.path + "/"))

        routes.append(Route(prefix, slash, methods=["GET"]))
        if at_root:
            rel = prefix.lstrip("/") + "/"
            routes.append(Route("/", _page(rel, rel + "static/"), methods=["GET"]))
    return routes
