"""The status page's files, served by the management API without a key.

The files are code, not data: the page asks for an API key, keeps it in ``sessionStorage`` and
sends it with every fetch, so everything it shows passes the same gate and scopes as any other
client. Only the files shipped in ``serve/static`` are served (no path from the request reaches
the file system), with a Content-Security-Policy that allows nothing but this origin: no CDN,
no inline script, so a service name or an error text can never run as code in the page.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

#: (method, path) of the routes anyone may call: the page's own files, which hold no data.
PUBLIC_ROUTES = frozenset({("GET", "/ui"), ("GET", "/ui/{asset}")})

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def page_files() -> dict[str, bytes]:
    """Every shipped file by name, read once when the app is built."""
    folder = resources.files("ray_enterprise.serve") / "static"
    return {
        f.name: f.read_bytes()
        for f in folder.iterdir()
        if f.is_file() and any(f.name.endswith(ext) for ext in CONTENT_TYPES)
    }


def add_page(app: FastAPI) -> None:
    """``GET /ui`` (the page) and ``GET /ui/{asset}`` (its script and style sheet)."""
    files = page_files()

    def answer(name: str) -> Response:
        body = files.get(name)
        if body is None:
            return JSONResponse({"error": "no such file"}, status_code=404)
        kind = CONTENT_TYPES["." + name.rsplit(".", 1)[-1]]
        return Response(content=body, media_type=kind, headers=PAGE_HEADERS)

    @app.get("/ui", include_in_schema=False)
    async def page() -> Response:
        return answer("index.html")

    @app.get("/ui/{asset}", include_in_schema=False)
    async def asset(asset: str) -> Response:
        return answer(asset)


__all__ = ["PUBLIC_ROUTES", "add_page", "page_files"]
