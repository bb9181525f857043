"""A real S3 endpoint for tests: moto's threaded server on 127.0.0.1, a free port.

moto's in-process mock patches botocore inside this process only; DVC talks to
S3 through aiobotocore/s3fs, so it needs a real HTTP endpoint. Buckets are made
with Object Lock enabled (which also turns on versioning), like the archive's
production buckets.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

NO_FILE = "/nonexistent/atdarchive-tests/aws-config"  # no real AWS config is read
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_MAX_ATTEMPTS": "1",          # fail fast: no botocore retry loops in tests
    "AWS_RETRY_MODE": "standard",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class S3Server:
    endpoint: str
    port: int

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def make_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
        return name


@contextmanager
def fake_aws_env() -> Iterator[None]:
    """Fake credentials and fast failure, restored afterwards (no real AWS config is read)."""
    saved = {k: os.environ.get(k) for k in [*FAKE_ENV, "AWS_CONFIG_FILE",
                                             "AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE"]}
    os.environ.update(FAKE_ENV)
    os.environ["AWS_CONFIG_FILE"] = NO_FILE
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = NO_FILE
    os.environ.pop("AWS_PROFILE", None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def running() -> Iterator[S3Server]:
    """Start moto's server on 127.0.0.1 (random free port); stop it afterwards."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    with fake_aws_env():
        server.start()
        try:
            yield S3Server(endpoint=f"http://127.0.0.1:{port}", port=port)
        finally:
            server.stop()


def enforce_auth(server: S3Server, on: bool) -> None:
    """Make the endpoint check credentials (moto accepts any by default); process-wide."""
    import urllib.request

    request = urllib.request.Request(f"{server.endpoint}/moto-api/reset-auth",
                                     data=b"0" if on else b"inf", method="POST",
                                     headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()
