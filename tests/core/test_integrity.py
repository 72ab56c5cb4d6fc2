"""What is served is what was recorded: damage to objects, records or manifests is never reused and is
repaired by the next run; links, inputs and scripts cannot change a version behind its back.

The damage matrix runs on a local datastore and on Azurite (select with ``-m azurite``)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.stores import new_blob_datastore

from airflow_provider_amlpipe.data import objects
from airflow_provider_amlpipe.data.datastore import Datastore, LocalDatastore
from airflow_provider_amlpipe.data.refs import DataPath, Output
from airflow_provider_amlpipe.data.sequence import encode
from airflow_provider_amlpipe.errors import ConfigurationError, StepFailedError
from airflow_provider_amlpipe.hashing import Hasher, StatCache, code_digest
from airflow_provider_amlpipe.reuse.fingerprint import Fingerprint
from airflow_provider_amlpipe.reuse.store import with_checksum
from airflow_provider_amlpipe.steps.inputs import resolve_inputs
from airflow_provider_amlpipe.steps.runner import Reused, Run, StepPlan, StepResult, StepRunner, StepWorkspace

LOG = logging.getLogger("test")
CONTENT = {"model.bin": "weights " * 40, "sub/config.json": '{"layers": 3}\n'}


@pytest.fixture(
    params=[
        pytest.param("local", id="local"),
        pytest.param("azure_blob", id="azure_blob", marks=pytest.mark.azurite),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Datastore]:
    if request.param == "local":
        yield LocalDatastore("integrity", tmp_path / "store")
        return
    blob_store = new_blob_datastore(request.getfixturevalue("azurite_connection_string"), "integrity", name="integrity")
    yield blob_store
    blob_store.container_client.delete_container()


@pytest.fixture
def runner(store: Datastore, tmp_path: Path) -> StepRunner:
    return StepRunner(store, Hasher(StatCache(tmp_path / "sc.sqlite")), LOG)


def make_plan(code: str, dataset: str = "integrity.model") -> StepPlan:
    parts = {"kind": "test", "code": code, "outputs": {"out": dataset}}
    return StepPlan("dag.task", {}, [Output("out")], {"out": dataset}, Fingerprint(parts), {"run_id": code})


def writer(content: dict[str, str]) -> Callable[[StepWorkspace], None]:
    def write(workspace: StepWorkspace) -> None:
        for rel, text in content.items():
            path = workspace.outputs["out"] / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    return write


def run_step(runner: StepRunner, plan: StepPlan, content: dict[str, str] = CONTENT) -> StepResult:
    decision = runner.decide(plan, allow_reuse=True, regenerate=False, lease_ttl=30)
    assert isinstance(decision, Run), decision
    return runner.run(plan, decision, {}, writer(content))


def served_files(store: Datastore, digest: str, tmp_path: Path) -> dict[str, str]:
    folder = objects.materialize(store, digest, tmp_path / f"served-{uuid.uuid4().hex}")
    return {p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*") if p.is_file()}


def writable(path: Path) -> Path:
    """Undo the seal on a local object (as a tamperer who is not root would)."""
    for folder in [*reversed(path.parents[:3]), path.parent]:
        os.chmod(folder, 0o755)
    if path.exists() and not path.is_symlink():
        os.chmod(path, 0o644)
    return path


def record_key(store: Datastore, plan: StepPlan) -> str:
    keys = sorted(store.list(f"reuse/records/{plan.fingerprint.digest}"))
    return keys[-1]


# -- damage ---------------------------------------------------------------------------------------


def damage_delete(store: Datastore, digest: str, _plan: StepPlan, _tmp: Path) -> None:
    store.delete(f"{objects.data_prefix(digest)}/model.bin")


def damage_truncate(store: Datastore, digest: str, _plan: StepPlan, _tmp: Path) -> None:
    key = f"{objects.data_prefix(digest)}/model.bin"
    local = store.local_path(key)
    if local is not None:
        with open(writable(local), "r+b") as handle:
            handle.truncate(10)
    else:
        store.write_bytes(key, b"truncated")


def damage_same_size(store: Datastore, digest: str, _plan: StepPlan, _tmp: Path) -> None:
    key = f"{objects.data_prefix(digest)}/model.bin"
    altered = CONTENT["model.bin"].replace("weights", "WEIGHTS").encode()
    local = store.local_path(key)
    if local is None:
        store.write_bytes(key, altered)  # same size; a blob's ETag changes whatever its bytes
        return
    old = local.stat()
    writable(local).write_bytes(altered)
    os.utime(local, ns=(old.st_atime_ns, old.st_mtime_ns))  # mtime put back, as `cp -p` or a tamperer would
    assert (local.stat().st_size, local.stat().st_mtime_ns) == (old.st_size, old.st_mtime_ns)


def damage_extra_file(store: Datastore, digest: str, _plan: StepPlan, _tmp: Path) -> None:
    key = f"{objects.data_prefix(digest)}/sub/extra.txt"
    local = store.local_path(key)
    if local is not None:
        writable(local.parent / "x")
    store.write_bytes(key, b"not part of the version")


def damage_symlink(store: Datastore, digest: str, _plan: StepPlan, tmp: Path) -> None:
    local = store.local_path(f"{objects.data_prefix(digest)}/model.bin")
    if local is None:
        pytest.skip("Blob storage has no symbolic links")
    outside = tmp / "outside-model.bin"
    outside.write_text(CONTENT["model.bin"])  # the same bytes, but a link whose target can change
    writable(local).unlink()
    local.symlink_to(outside)


def _tamper_record(store: Datastore, plan: StepPlan, tmp: Path, *, fix_checksum: bool) -> None:
    # Another dataset's object, committed by another step.
    other = run_step(
        StepRunner(store, Hasher(StatCache(tmp / "sc2.sqlite")), LOG), make_plan("other", "other.ds"), {"b.txt": "B"}
    )
    key = record_key(store, plan)
    record = json.loads(store.read_bytes(key))
    record["outputs"]["out"]["digest"] = other.outputs["out"]["digest"]
    record["outputs"]["out"]["path"] = other.outputs["out"]["path"]
    if fix_checksum:
        record = with_checksum(record)
    store.write_bytes(key, encode(record))


def damage_record_naive(store: Datastore, _digest: str, plan: StepPlan, tmp: Path) -> None:
    _tamper_record(store, plan, tmp, fix_checksum=False)


def damage_record_with_checksum(store: Datastore, _digest: str, plan: StepPlan, tmp: Path) -> None:
    _tamper_record(store, plan, tmp, fix_checksum=True)


def damage_record_garbage(store: Datastore, _digest: str, plan: StepPlan, _tmp: Path) -> None:
    store.write_bytes(record_key(store, plan), b"{ not json")


def damage_manifest_path(store: Datastore, digest: str, _plan: StepPlan, _tmp: Path) -> None:
    key = objects.manifest_key(digest)
    manifest = json.loads(store.read_bytes(key))
    manifest["files"][0]["path"] = "../../../../evil.bin"
    store.write_bytes(key, encode(manifest))


def damage_manifest_garbage(store: Datastore, digest: str, _plan: StepPlan, _tmp: Path) -> None:
    store.write_bytes(objects.manifest_key(digest), b"\x00\x01")


DAMAGES = [
    damage_delete,
    damage_truncate,
    damage_same_size,
    damage_extra_file,
    damage_symlink,
    damage_record_naive,
    damage_record_with_checksum,
    damage_record_garbage,
    damage_manifest_path,
    damage_manifest_garbage,
]


@pytest.mark.parametrize("damage", DAMAGES, ids=[d.__name__.removeprefix("damage_") for d in DAMAGES])
def test_damage_is_never_reused_and_the_next_run_repairs_it(
    store: Datastore, runner: StepRunner, tmp_path: Path, damage: Callable[..., None]
) -> None:
    plan = make_plan("v1")
    first = run_step(runner, plan)
    digest = first.outputs["out"]["digest"]
    assert isinstance(runner.decide(plan, allow_reuse=True, regenerate=False, lease_ttl=30), Reused)

    damage(store, digest, plan, tmp_path)

    # A fresh hasher as well: the damage must show however warm this machine's caches are.
    decision = runner.decide(plan, allow_reuse=True, regenerate=False, lease_ttl=30)
    assert isinstance(decision, Run), "damaged outputs were served"
    repaired = runner.run(plan, decision, {}, writer(CONTENT))
    assert repaired.outputs["out"]["digest"] == digest
    objects.verify(store, digest, Hasher(StatCache(tmp_path / "fresh.sqlite")))
    again = runner.decide(plan, allow_reuse=True, regenerate=False, lease_ttl=30)
    assert isinstance(again, Reused)
    assert again.outputs["out"]["digest"] == digest
    assert served_files(store, digest, tmp_path) == CONTENT


# -- links, inputs and scripts ----------------------------------------------------------------------


def test_links_in_outputs_are_stored_as_the_bytes_they_point_to(tmp_path: Path) -> None:
    store = LocalDatastore("s", tmp_path / "store")
    runner = StepRunner(store, Hasher(StatCache(tmp_path / "sc.sqlite")), LOG)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "folder").mkdir(parents=True)
    (elsewhere / "target.txt").write_text("target v1")
    (elsewhere / "folder" / "inner.txt").write_text("inner")

    def write(workspace: StepWorkspace) -> None:
        out = workspace.outputs["out"]
        (out / "link.txt").symlink_to(elsewhere / "target.txt")
        (out / "dirlink").symlink_to(elsewhere / "folder")

    plan = make_plan("links")
    decision = runner.decide(plan, allow_reuse=True, regenerate=False, lease_ttl=30)
    assert isinstance(decision, Run)
    result = runner.run(plan, decision, {}, write)
    digest = result.outputs["out"]["digest"]
    data = store.local_path(objects.data_prefix(digest))
    assert data is not None
    assert not (data / "link.txt").is_symlink() and (data / "link.txt").read_text() == "target v1"
    assert (data / "dirlink" / "inner.txt").read_text() == "inner"
    (elsewhere / "target.txt").write_text("target v2")  # the version does not follow its old link
    assert (data / "link.txt").read_text() == "target v1"
    objects.verify(store, digest, Hasher(StatCache(tmp_path / "fresh.sqlite")))


def test_a_dangling_link_in_an_output_fails_before_anything_is_stored(tmp_path: Path) -> None:
    store = LocalDatastore("s", tmp_path / "store")
    runner = StepRunner(store, Hasher(StatCache(tmp_path / "sc.sqlite")), LOG)
    plan = make_plan("dangling")
    decision = runner.decide(plan, allow_reuse=True, regenerate=False, lease_ttl=30)
    assert isinstance(decision, Run)

    def write(workspace: StepWorkspace) -> None:
        (workspace.outputs["out"] / "ok.txt").write_text("ok")
        (workspace.outputs["out"] / "gone.txt").symlink_to(tmp_path / "missing")

    with pytest.raises(StepFailedError, match=r"output 'out': 'gone.txt' is a symbolic link .* does not exist"):
        runner.run(plan, decision, {}, write)
    assert list(store.list("objects")) == [] if (tmp_path / "store" / "objects").exists() else True
    assert list(store.list("registry")) == []


@pytest.mark.parametrize(
    ("name", "problem"),
    [("back\\slash.txt", "contains '\\\\'"), ("x" * 300, "longer than 255 bytes"), ("new\nline", "control character")],
)
def test_output_file_names_a_datastore_cannot_hold_fail_before_anything_is_stored(
    tmp_path: Path, name: str, problem: str
) -> None:
    store = LocalDatastore("s", tmp_path / "store")
    runner = StepRunner(store, Hasher(StatCache(tmp_path / "sc.sqlite")), LOG)
    plan = make_plan(f"names-{problem}")
    decision = runner.decide(plan, allow_reuse=True, regenerate=False, lease_ttl=30)
    assert isinstance(decision, Run)

    def write(workspace: StepWorkspace) -> None:
        (workspace.outputs["out"] / "fine.txt").write_text("fine")
        target = workspace.outputs["out"] / "sub"
        target.mkdir()
        if len(name) > 255:  # the file system refuses such a name too: use a long folder chain
            for _ in range(5):
                target = target / ("y" * 240)
            target.mkdir(parents=True)
            (target / "f.txt").write_text("deep")
            return
        (target / name).write_text("bad")

    expected = problem if len(name) <= 255 else "longer than a datastore key may be"
    with pytest.raises(StepFailedError, match=expected):
        runner.run(plan, decision, {}, write)
    assert list(store.list("registry")) == []


def test_a_non_utf8_output_file_name_fails_clearly(tmp_path: Path) -> None:
    store = LocalDatastore("s", tmp_path / "store")
    runner = StepRunner(store, Hasher(StatCache(tmp_path / "sc.sqlite")), LOG)
    plan = make_plan("latin1")
    decision = runner.decide(plan, allow_reuse=True, regenerate=False, lease_ttl=30)
    assert isinstance(decision, Run)

    def write(workspace: StepWorkspace) -> None:
        with open(os.path.join(os.fsencode(workspace.outputs["out"]), b"caf\xe9.txt"), "w") as handle:
            handle.write("x")

    with pytest.raises(StepFailedError, match="not valid UTF-8"):
        runner.run(plan, decision, {}, write)


def test_a_consumer_writing_into_its_input_cannot_change_the_version(tmp_path: Path) -> None:
    store = LocalDatastore("s", tmp_path / "store")
    hasher = Hasher(StatCache(tmp_path / "sc.sqlite"))
    runner = StepRunner(store, hasher, LOG)
    upstream = run_step(runner, make_plan("upstream"))
    digest = upstream.outputs["out"]["digest"]
    inputs = resolve_inputs({"model": upstream.outputs["out"]}, lambda _: store, hasher, "s")
    parts = {"kind": "test", "code": "consumer", "outputs": {"out": "consumer.out"}}
    plan = StepPlan("dag.consumer", inputs, [Output("out")], {"out": "consumer.out"}, Fingerprint(parts), {})
    decision = runner.decide(plan, allow_reuse=True, regenerate=False, lease_ttl=30)
    assert isinstance(decision, Run)
    attempts: list[str] = []

    def vandal(workspace: StepWorkspace) -> None:
        folder = workspace.inputs["model"]
        for action in (
            lambda: (folder / "model.bin").write_text("overwritten"),
            lambda: (folder / "added.txt").write_text("added"),
        ):
            try:
                action()
                attempts.append("written")
            except PermissionError:
                attempts.append("refused")
        (workspace.outputs["out"] / "ok.txt").write_text("ok")

    runner.run(plan, decision, {}, vandal)
    assert len(attempts) == 2
    objects.verify(store, digest, Hasher(StatCache(tmp_path / "fresh.sqlite")))
    assert served_files(store, digest, tmp_path) == CONTENT


def _system_python() -> str:
    """An interpreter an unprivileged user may run (this virtualenv may live under a private home)."""
    import shutil

    for candidate in ("/usr/bin/python3", shutil.which("python3")):
        if candidate and os.access(candidate, os.X_OK) and os.stat(candidate).st_mode & 0o001:
            return candidate
    pytest.skip("no interpreter that an unprivileged user can run")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="switches to an unprivileged user")
def test_committed_local_versions_are_read_only_for_a_consumer_that_is_not_root() -> None:
    root = Path(tempfile.mkdtemp(prefix="amlpipe-seal-"))
    try:
        os.chmod(root, 0o755)
        store = LocalDatastore("s", root / "store")
        source = root / "src"
        source.mkdir()
        (source / "f.txt").write_text("sealed")
        manifest = objects.publish(store, source, Hasher(StatCache(root / "sc.sqlite")))
        folder = store.local_path(objects.data_prefix(manifest.digest))
        probe = (
            "import sys\n"
            "results = []\n"
            "for action in (lambda: open(sys.argv[1] + '/f.txt', 'w'), lambda: open(sys.argv[1] + '/new.txt', 'w')):\n"
            "    try:\n        action(); results.append('written')\n"
            "    except PermissionError:\n        results.append('refused')\n"
            "print(results)\n"
        )
        done = subprocess.run(
            [_system_python(), "-c", probe, str(folder)],
            capture_output=True,
            text=True,
            preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)),
        )
        assert done.stdout.strip() == "['refused', 'refused']", done.stderr
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(root)], check=False)
        subprocess.run(["rm", "-rf", str(root)], check=False)


def test_a_link_in_a_local_datastore_leading_outside_it_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "passwd.txt").write_text("secret")
    root = tmp_path / "data"
    (root / "raw").mkdir(parents=True)
    (root / "raw" / "ok.csv").write_text("a\n")
    (root / "raw" / "escape").symlink_to(outside)
    (root / "inside").symlink_to(root / "raw")  # a link within the store is fine
    store = LocalDatastore("data", root)
    hasher = Hasher(StatCache(tmp_path / "sc.sqlite"))
    with pytest.raises(ConfigurationError, match="leading outside the datastore"):
        resolve_inputs({"raw": DataPath("data", "raw")}, lambda _: store, hasher, "data")
    with pytest.raises(ConfigurationError, match="leading outside the datastore"):
        resolve_inputs({"raw": DataPath("data", "raw/escape/passwd.txt")}, lambda _: store, hasher, "data")
    (root / "raw" / "escape").unlink()
    resolved = resolve_inputs({"raw": DataPath("data", "inside")}, lambda _: store, hasher, "data")
    assert resolved["raw"].kind == "folder"


def test_a_script_outside_its_source_directory_is_part_of_the_fingerprint(tmp_path: Path) -> None:
    hasher = Hasher(StatCache(tmp_path / "sc.sqlite"))
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "helper.py").write_text("X = 1\n")
    script = tmp_path / "train.py"
    script.write_text("print(1)\n")
    before = code_digest(hasher, folder, folder / ".." / "train.py")
    script.write_text("print(2)\n")
    assert code_digest(hasher, folder, folder / ".." / "train.py") != before
    assert code_digest(hasher, folder, script) != before


def test_metrics_lines_that_are_not_metrics_are_skipped_with_a_warning(tmp_path: Path) -> None:
    from airflow_provider_amlpipe.steps.runner import read_metrics

    class Collect:
        warnings: list[str] = []

        def info(self, msg: Any, *args: Any) -> None:
            pass

        def warning(self, msg: Any, *args: Any) -> None:
            self.warnings.append(msg % args)

    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"name": "acc", "value": 0.9, "step": null}\nnot json\n[1, 2]\n\xff\xfe\n')
    log = Collect()
    metrics = read_metrics(path, log)
    assert [m["name"] for m in metrics] == ["acc"]
    assert len(log.warnings) == 3 and all("is not a metric written by runtime.log_metric" in w for w in log.warnings)
