"""Run the web app with uvicorn on a socket bound here, so a busy port is one clear
line and `--port 0` can say which port it got."""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Iterable, Mapping

from atdarchive.errors import AtdError
from atdarchive.webapp.guard import LOCAL_NAMES, as_host
from atdarchive.webapp.pages.base import Browsed

LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("0.0.0.0", "::", "")


def accepted_hosts(host: str, allow: Iterable[str] = ()) -> list[str]:
    """The Host header names the server answers besides localhost's: the address it is
    bound to (not a wildcard, which names no one) and each `--allow-host` NAME."""
    names = [] if host in WILDCARD else [as_host(host)]
    for name in allow:
        name = name.strip()
        if not name or any(c in name for c in "*/ ,@?#") or name.count(":") == 1 \
                or "]:" in name:
            raise AtdError(f"--allow-host {name!r}: a host name or address as browsers send "
                           "it, without port or wildcard (the Host check cannot be turned off)")
        names.append(as_host(name))
    return names


def _is_loopback(host: str) -> bool:
    try:
        return host in LOOPBACK or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(archive: Browsed, host: str = "127.0.0.1", port: int = 8000, *,
          allow_hosts: Iterable[str] = (),
          overrides: Mapping[str, float] | None = None) -> None:
    """Serve ARCHIVE read-only at http://HOST:PORT/ until interrupted (Ctrl-C); the Host
    header must be localhost's, HOST's, or one of ALLOW_HOSTS."""
    import uvicorn

    from atdarchive.webapp.app import create_app

    hosts = accepted_hosts(host, allow_hosts)
    app = create_app(archive, hosts=hosts, overrides=overrides)  # bad bounds: before binding
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise AtdError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound = sock.getsockname()[1]
    if not _is_loopback(host):
        names = ", ".join([*LOCAL_NAMES, *hosts])
        print(f"warning: serving on {host}: anyone who can reach this machine can read "
              f"the archive; Host names answered: {names} (--allow-host NAME adds one)",
              file=sys.stderr)
    shown = "127.0.0.1" if host in WILDCARD else host if ":" not in host else f"[{host}]"
    print(f"serving {archive.root} read-only at http://{shown}:{bound}/ (Ctrl-C stops)",
          file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
