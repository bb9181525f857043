"""Run the web app with uvicorn on a socket bound here, so a busy port is one clear
line and `--port 0` can say which port it got."""

from __future__ import annotations

import socket
import sys

from atdarchive.errors import AtdError
from atdarchive.webapp.pages.base import Browsed

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve(archive: Browsed, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ARCHIVE read-only at http://HOST:PORT/ until interrupted (Ctrl-C)."""
    import uvicorn

    from atdarchive.webapp.app import create_app

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise AtdError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound = sock.getsockname()[1]
    hosts = ["*"] if host in ("0.0.0.0", "::") else [host]
    if host not in LOOPBACK:
        print(f"warning: serving on {host}: anyone who can reach this machine can read "
              "the archive", file=sys.stderr)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print(f"serving {archive.root} read-only at http://{shown}:{bound}/ (Ctrl-C stops)",
          file=sys.stderr, flush=True)
    config = uvicorn.Config(create_app(archive, hosts=hosts), log_level="warning",
                            access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
