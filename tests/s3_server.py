"""An S3-compatible object storage for the archive's tests: moto's server mode on 127.0.0.1.

It runs in the test process (``ThreadedMotoServer``) on a free port; its buckets live in moto's
in-process backend, so ``stop()`` then ``start()`` on the same port is an outage that loses nothing,
like an object store that went away and came back.
"""

from __future__ import annotations

import uuid
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from vidsearch.stack.services import free_port

ACCESS_KEY = "archive-test-key"
SECRET_KEY = "archive-test-secret"  # moto accepts any
REGION = "us-east-1"


class MotoS3:
    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.running = False

    def start(self) -> MotoS3:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self._server.stop()
            self.running = False

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def bucket(self) -> str:
        """A new empty bucket."""
        name = f"archive-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def settings(self, bucket: str, prefix: str = "vectors") -> dict[str, Any]:
        """Settings overrides that point the archive at ``s3://bucket/prefix`` on this server."""
        return {
            "archive_url": f"s3://{bucket}/{prefix}", "archive_s3_endpoint": self.endpoint,
            "archive_s3_region": REGION, "archive_s3_access_key": ACCESS_KEY,
            "archive_s3_secret_key": SECRET_KEY, "archive_timeout_s": 2.0,
        }

    def env(self, bucket: str, prefix: str = "vectors") -> dict[str, str]:
        """The same as ``VIDSEARCH_*`` environment variables (for subprocesses)."""
        return {f"VIDSEARCH_{k.upper()}": str(v) for k, v in self.settings(bucket, prefix).items()}
