"""WorkflowStore on a real folder: atomic writes, kept versions (explicit saves, edits coalesced
to one a minute), renames that never overwrite, refusals, name rules, threads."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from latentloom.graph.workflow import WorkflowFormatError, parse_workflow
from latentloom.server.paths import PathRefused
from latentloom.server.workflow_store import (
    WorkflowExists,
    WorkflowNotFound,
    WorkflowStore,
    workflow_name,
)
from tests.support import WORKFLOWS


def example(name: str = "txt2img.json") -> dict[str, Any]:
    document: dict[str, Any] = json.loads((WORKFLOWS / name).read_text(encoding="utf-8"))
    return document


def with_seed(seed: int) -> dict[str, Any]:
    document = example()
    document["meta"] = {"seed": seed}
    return document


class Clock:
    """A settable clock: history coalescing is about minutes, tests are not."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> WorkflowStore:
    return WorkflowStore(tmp_path / "workflows", keep=3, keep_saved=3, clock=clock)


def seeds(store: WorkflowStore, name: str = "w") -> list[tuple[int, str]]:
    """(seed, kind) of each kept version, oldest first."""
    kept = []
    for path in store.history(name):
        kind = path.name.split("Z", 1)[1].removesuffix(".json") or "edit"
        kept.append((json.loads(path.read_text())["meta"]["seed"], kind.lstrip(".")))
    return kept


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


def test_every_explicit_save_is_kept(store: WorkflowStore, clock: Clock) -> None:
    store.put("w", with_seed(1))
    first = (store.folder / "w.json").read_bytes()
    clock.now += 1
    store.put("w", with_seed(2))
    assert store.get("w")["meta"] == {"seed": 2}
    assert seeds(store) == [(1, "saved"), (2, "saved")]
    assert store.history("w")[0].read_bytes() == first
    assert store.history("w")[0].parent == store.folder / ".history" / "w"


def test_live_edits_keep_at_most_one_version_a_minute(store: WorkflowStore, clock: Clock) -> None:
    store.put("w", with_seed(0), explicit=False)
    for second in range(1, 150):  # an edit every second for two and a half minutes
        clock.now += 1
        store.put("w", with_seed(second), explicit=False)
    # The first edit replaced nothing; later ones keep what they replace once a minute.
    assert seeds(store) == [(0, "edit"), (60, "edit"), (120, "edit")]
    clock.now += 1
    store.put("w", with_seed(1000))  # the explicit save is kept at once, whatever the time
    clock.now += 1
    store.put("w", with_seed(1001), explicit=False)  # replaces the saved version: no copy
    assert seeds(store)[-2:] == [(120, "edit"), (1000, "saved")]
    clock.now += 60
    store.put("w", with_seed(1002), explicit=False)
    assert seeds(store)[-1] == (1001, "edit")


def test_history_keeps_the_newest_versions(store: WorkflowStore, clock: Clock) -> None:
    for seed in range(6):
        clock.now += 61
        store.put("w", with_seed(seed), explicit=seed % 2 == 0)
    # keep=3 edits and keep_saved=3 saves, oldest first: every one of them fits here.
    assert seeds(store) == [(0, "saved"), (1, "edit"), (2, "saved"), (3, "edit"), (4, "saved")]
    for seed in range(6, 12):
        clock.now += 61
        store.put("w", with_seed(seed), explicit=False)
    assert seeds(store) == [
        (0, "saved"),
        (2, "saved"),
        (4, "saved"),
        (8, "edit"),
        (9, "edit"),
        (10, "edit"),
    ]


def test_rename_never_replaces_another_workflow(store: WorkflowStore) -> None:
    store.put("draft", with_seed(1))
    store.put("final", with_seed(2))
    with pytest.raises(WorkflowExists) as taken:
        store.rename("draft", "final")
    assert str(taken.value) == (
        "a saved workflow named 'final' already exists; choose another name, "
        "or open it and delete it first"
    )
    assert store.get("final")["meta"] == {"seed": 2} and store.exists("draft")
    info = store.rename("draft", "draft 2")
    assert info.name == "draft 2" and not store.exists("draft")
    assert store.get("draft 2")["meta"] == {"seed": 1}
    assert seeds(store, "draft 2") == [(1, "saved")]  # the history moved along
    with pytest.raises(WorkflowNotFound):
        store.rename("draft", "anything")


def test_a_create_only_put_refuses_a_taken_name(store: WorkflowStore) -> None:
    store.put("w", with_seed(1))
    with pytest.raises(WorkflowExists):
        store.put("w", with_seed(2), overwrite=False)
    assert store.get("w")["meta"] == {"seed": 1}
    store.put("new", with_seed(3), overwrite=False)
    assert store.get("new")["meta"] == {"seed": 3}


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
    [only] = store.history("w")  # the first save; the refused ones left nothing
    assert only.read_bytes() == before
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
    saved, deleted = store.history("gone")
    assert saved.name.endswith("Z.saved.json") and deleted.name.endswith("Z.deleted.json")
    assert deleted.read_bytes() == content
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
    stores = [WorkflowStore(tmp_path / "workflows", keep=100, keep_saved=100) for _ in range(2)]
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
    kept = [json.loads(path.read_text())["meta"]["seed"] for path in stores[0].history("shared")]
    assert sorted(kept) == list(range(16))  # every save landed whole and was kept
    assert kept[-1] == final
    assert visible_files(stores[0]) == ["shared.json"]
