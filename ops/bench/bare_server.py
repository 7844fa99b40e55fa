"""The ceiling of ``refract bench decisions``: a bare aiohttp endpoint answering a constant JSON."""

from __future__ import annotations

import argparse

from aiohttp import web

ANSWER = (
    b'{"decision_id":"dec_0","customer_id":"c","placements":{"home-hero":{"kind":"single","max_items":1,'
    b'"open_delay_ms":0,"default":true,"default_content":{},"items":[]}}}'
)


async def decide(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=ANSWER, content_type="application/json")


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_post("/v1/decisions", decide)
    app.router.add_get("/healthz", health)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
