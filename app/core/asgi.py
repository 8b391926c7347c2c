"""What CelLabel's plain ASGI middlewares share (``@app.middleware("http")`` would cost every
request an extra task and a memory stream)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HttpMiddleware:
    """Passes anything but HTTP (lifespan, websockets) straight through; subclasses implement
    :meth:`handle` for HTTP requests."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


def editing_headers(send: Send, edit: Callable[[Message, MutableHeaders], None]) -> Send:
    """``send`` that lets ``edit`` see the response's start message and change its headers
    before they go out."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            edit(message, MutableHeaders(scope=message))
        await send(message)

    return wrapped
