"""WorkflowStore on a real folder: atomic writes, kept versions, refusals, name rules, threads."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from latentloom.graph.workflow import WorkflowFormatError, parse_workflow
from latentloom.server.paths import PathRefused
from latentloom.server.workflow_store import WorkflowNotFound, WorkflowStore, workflow_name
from tests.support import WORKFLOWS


def example(name: str = "txt2img.json") -> dict[str, Any]:
    document: dict[str, Any] = json.loads((WORKFLOWS / name).read_text(encoding="utf-8"))
    return document


def with_seed(seed: int) -> dict[str, Any]:
    document = example()
    document["meta"] = {"seed": seed}
    return document


@pytest.fixture
def store(tmp_path: Path) -> WorkflowStore:
    return WorkflowStore(tmp_path / "workflows", keep=3)


def visible_files(store: WorkflowStore) -> list[str]:
    return sorted(path.name for path in store.folder.iterdir() if path.name != ".history")


def test_put_then_get_and_list(store: WorkflowStore) -> None:
    info = store.put("my workflow", example())
    assert store.get("my workflow") == parse_workflow(example()).to_json()
    path = store.folder / "my workflow.json"
    assert (info.name, info.size) == ("my workflow", path.stat().st_size)
    assert info.modified.tzinfo is not None
    assert store.list() == [info]
    assert visible_files(store) == ["my workflow.json"]  # no temporary files left


def test_put_keeps_the_previous_version(store: WorkflowStore) -> None:
    store.put("w", with_seed(1))
    first = (store.folder / "w.json").read_bytes()
    store.put("w", with_seed(2))
    assert store.get("w")["meta"] == {"seed": 2}
    [previous] = store.history("w")
    assert previous.read_bytes() == first
    assert previous.parent == store.folder / ".history" / "w"


def test_history_keeps_the_newest_versions(store: WorkflowStore) -> None:
    for seed in range(6):
        store.put("w", with_seed(seed))
    kept = [json.loads(path.read_text())["meta"]["seed"] for path in store.history("w")]
    assert kept == [2, 3, 4]  # keep=3, oldest first; seed 5 is the current file


def test_an_invalid_document_is_refused_and_the_file_untouched(store: WorkflowStore) -> None:
    store.put("w", example())
    before = (store.folder / "w.json").read_bytes()
    broken = example()
    broken["nodes"]["checkpoint"]["inputs"] = {"checkpoint": {"node": ""}}
    with pytest.raises(WorkflowFormatError, match="invalid workflow document"):
        store.put("w", broken)
    with pytest.raises(WorkflowFormatError) as refused:
        store.put("w", {"schema": "something/else"})
    assert str(refused.value) == (
        'not a Latentloom workflow: expected "schema": "latentloom/workflow", got \'something/else\''
    )
    assert (store.folder / "w.json").read_bytes() == before
    assert store.history("w") == []
    assert visible_files(store) == ["w.json"]


def test_a_failed_replace_leaves_the_old_file_and_no_temporary(
    store: WorkflowStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put("w", with_seed(1))
    before = (store.folder / "w.json").read_bytes()

    def failing_replace(source: Any, target: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        store.put("w", with_seed(2))
    assert (store.folder / "w.json").read_bytes() == before
    assert visible_files(store) == ["w.json"]


def test_delete_moves_the_workflow_into_its_history(store: WorkflowStore) -> None:
    store.put("gone", example())
    content = (store.folder / "gone.json").read_bytes()
    store.delete("gone")
    assert store.list() == []
    [kept] = store.history("gone")
    assert kept.read_bytes() == content
    with pytest.raises(WorkflowNotFound) as missing:
        store.get("gone")
    assert str(missing.value) == "no saved workflow named 'gone'"
    with pytest.raises(FileNotFoundError, match="no saved workflow named 'gone'"):
        store.delete("gone")


def test_a_corrupt_saved_file_is_reported(store: WorkflowStore) -> None:
    (store.folder / "hand edited.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(WorkflowFormatError) as refused:
        store.get("hand edited")
    assert str(refused.value).startswith("saved workflow 'hand edited' is not valid JSON (")
    assert str(refused.value).endswith("); fix or delete hand edited.json")


@pytest.mark.parametrize("name", ["my workflow", "v1.2_final-B", "été 2", "x" * 100, "a..b"])
def test_allowed_names(name: str) -> None:
    assert workflow_name(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("w.json", "leave out the .json suffix; the store adds it"),
        ("W.JSON", "leave out the .json suffix; the store adds it"),
        ("", "the name is empty"),
        ("x" * 101, "the name is 101 characters long; the limit is 100"),
        ("../w", "a file name may not contain '/' or '\\'; pick a name without folders"),
        ("a/b", "a file name may not contain '/' or '\\'; pick a name without folders"),
        (".hidden", "a file name may not start with '.'"),
        ("w ", "a file name may not start or end with a space, or end with '.'"),
        ("a#b&c", "workflow names use letters, digits, spaces and - _ . only; found '#&'"),
        (
            "emoji \u2728",
            "workflow names use letters, digits, spaces and - _ . only; found '\u2728'",
        ),
    ],
)
def test_refused_names(store: WorkflowStore, name: str, reason: str) -> None:
    with pytest.raises(PathRefused) as refused:
        store.put(name, example())
    assert refused.value.reason == reason
    assert visible_files(store) == []


def test_list_skips_files_that_break_the_rules(store: WorkflowStore, tmp_path: Path) -> None:
    store.put("good", example())
    (store.folder / "bad#name.json").write_text("{}")
    (store.folder / ".hidden.json").write_text("{}")
    (store.folder / "folder.json").mkdir()
    (tmp_path / "outside.json").write_text("{}")
    (store.folder / "leak.json").symlink_to(tmp_path / "outside.json")
    assert [info.name for info in store.list()] == ["good"]
    with pytest.raises(PathRefused, match="resolves outside its folder"):
        store.get("leak")


def test_concurrent_writers_leave_one_whole_document(tmp_path: Path) -> None:
    stores = [WorkflowStore(tmp_path / "workflows", keep=100) for _ in range(2)]
    documents = [with_seed(seed) for seed in range(16)]
    start = threading.Barrier(len(documents))

    def write(seed: int) -> None:
        start.wait()
        stores[seed % 2].put("shared", documents[seed])

    threads = [threading.Thread(target=write, args=(seed,)) for seed in range(len(documents))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = stores[0].get("shared")["meta"]["seed"]
    kept = {json.loads(path.read_text())["meta"]["seed"] for path in stores[0].history("shared")}
    assert kept | {final} == set(range(16))  # every write landed whole, none was lost
    assert len(kept) == 15
    assert visible_files(stores[0]) == ["shared.json"]
