"""`auth0-migrate tenant serve`: the local tenant over HTTP, with uvicorn.

Prints the base URL on stdout once it accepts connections (one line, for scripts to wait on),
the generated client credentials on stderr when none were given, and stops cleanly on SIGINT or
SIGTERM (uvicorn's own handlers).
"""

from __future__ import annotations

import argparse
import socket
import sys

import uvicorn
from starlette.applications import Starlette

from .app import create_app
from .config import TenantConfig
from .faults import Faults


def build_app(args: argparse.Namespace) -> tuple[Starlette, str]:
    base_url = f"http://{args.host}:{args.port}"
    scopes = tuple(args.client_scopes.replace(",", " ").split()) if args.client_scopes else None
    config = TenantConfig(name=args.name, plan=args.plan, db_path=args.db, client_id=args.client_id,
                          client_secret=args.client_secret, client_scopes=scopes, base_url=base_url, rate=args.rate,
                          burst=args.burst, latency=args.latency, job_seconds=args.job_seconds,
                          download_content_encoding=args.download_content_encoding)
    app = create_app(config)
    faults: Faults = app.state.tenant.faults
    for spec in args.fault:
        faults.calls.append(Faults.parse(spec))
    faults.fail_jobs.update(args.fail_job)
    faults.expire_jobs.update(args.expire_job)
    faults.job_pending_polls = args.job_pending_polls
    faults.expire_links = args.expire_links
    faults.search_lag = args.search_lag
    faults.lose_import_answers.extend(a if a == "drop" else int(a) for a in args.lose_import_answer)
    return app, base_url


def serve(args: argparse.Namespace) -> int:
    app, base_url = build_app(args)
    tenant = app.state.tenant
    if not (args.client_id and args.client_secret):
        print(f"client id: {tenant.client_id}\nclient secret: {tenant.client_secret}", file=sys.stderr)

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            print(base_url, flush=True)

    server = Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", lifespan="off",
                                   date_header=False))  # the app sends Date from the tenant's clock
    try:
        server.run()
    finally:
        tenant.close()
    return 0
