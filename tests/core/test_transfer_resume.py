"""A transfer killed halfway (SIGKILL) and rerun copies every file exactly once, all verified."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from support.counting_proxy import counting_proxy
from support.paths import REPO

from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore
from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.transfer import blob
from airflow_provider_amlpipe.transfer.files import FileEnd, FileTransfer
from airflow_provider_amlpipe.transfer.journal import Journal

CHILD = textwrap.dedent(
    """
    import logging, sys
    from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore
    from airflow_provider_amlpipe.data.datastore import LocalDatastore
    from airflow_provider_amlpipe.transfer import blob, journal as journal_module
    from airflow_provider_amlpipe.transfer.files import FileEnd, FileTransfer
    from airflow_provider_amlpipe.transfer.journal import Journal

    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    blob.SINGLE_PUT, blob.BLOCK_SIZE = 200_000, 100_000
    journal_module.FLUSH_SECONDS = 0.3  # batches of a few files: some journalled, the last few not
    lake = LocalDatastore("lake", sys.argv[1])
    dest = AzureBlobDatastore.from_settings("blob", container=sys.argv[3], connection_string=sys.argv[4])
    journal = Journal(LocalDatastore("steps", sys.argv[2]), "pair")
    FileTransfer(FileEnd(lake, "raw", "directory"), FileEnd(dest, "landing", "directory"), journal,
                 logging.getLogger("t"), workers=2, progress_every=0.0).run()
    print("DONE", flush=True)
    """
)


def test_killed_transfer_resumes_without_copying_any_file_twice(
    azurite_connection_string: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = next(p.split("=", 1)[1] for p in azurite_connection_string.split(";") if p.startswith("BlobEndpoint="))
    target = endpoint.rsplit("/", 1)[0]
    account = endpoint.rsplit("/", 1)[1]
    container = f"resume-{uuid.uuid4().hex[:12]}"
    lake = LocalDatastore("lake", tmp_path / "lake")
    sizes = {f"raw/f{i:02d}.bin": (150_000 if i % 3 else 450_000) for i in range(24)}
    contents = {}
    for key, size in sizes.items():
        path = tmp_path / "lake" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        contents[key] = os.urandom(size)
        path.write_bytes(contents[key])
    with counting_proxy(target, delay=0.05) as (proxy, counter):
        conn = azurite_connection_string.replace(endpoint, f"{proxy}/{account}")
        dest = AzureBlobDatastore.from_settings(
            "blob", container=container, connection_string=conn, create_container=True
        )
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path / "lake"), str(tmp_path / "steps"), container, conn],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert child.stdout is not None
        for line in child.stdout:
            # Kill once about a third of the files are done: some whole, some with blocks staged.
            if line.startswith("transfer progress: ") and int(line.split()[2].split("/")[0]) >= 8:
                os.kill(child.pid, signal.SIGKILL)
                break
        child.wait(timeout=60)
        assert child.returncode == -signal.SIGKILL, "the transfer ended before it could be killed"
        counter.wait_idle()
        before = dict(counter.written)
        assert 0 < sum(before.values()) < sum(sizes.values())

        blob.SINGLE_PUT, blob.BLOCK_SIZE = 200_000, 100_000
        journal = Journal(LocalDatastore("steps", tmp_path / "steps"), "pair")
        with caplog.at_level(logging.INFO, logger="resume"):
            done = FileTransfer(
                FileEnd(lake, "raw", "directory"),
                FileEnd(dest, "landing", "directory"),
                journal,
                logging.getLogger("resume"),
            ).run()
        assert any(
            "already verified by an earlier run" in r.getMessage() and not r.getMessage().startswith("transfer: 0 ")
            for r in caplog.records
        )
        assert len(done) == len(sizes)
        for verified in done:
            data = contents[f"raw/{verified.path}"]
            assert verified.digest == "md5:" + hashlib.md5(data).hexdigest()
            assert dest.read_bytes(f"landing/{verified.path}") == data
        # The service received each file's bytes exactly once over both runs.
        written = {path.split(f"/{container}/", 1)[1]: n for path, n in counter.written.items()}
        assert written == {key.replace("raw/", "landing/"): size for key, size in sizes.items()}
    dest.container_client.delete_container()
