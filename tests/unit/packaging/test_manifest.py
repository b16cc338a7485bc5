"""The manifest model and its published JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from cloacina_host import Manifest, manifest_json_schema
from cloacina_host._packaging._manifest import FORMAT_VERSION, manifest_schema_text
from cloacina_host.cli import main

from .conftest import make_wheel, manifest_dict

SCHEMA_FILE = Path(__file__).resolve().parents[3] / "schemas" / "cloacina-manifest-v2.schema.json"


def test_published_schema_is_the_models_schema() -> None:
    published = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert published == manifest_json_schema(), (
        "schemas/cloacina-manifest-v2.schema.json is stale: regenerate it with "
        "`cloacina-ctl manifest-schema > schemas/cloacina-manifest-v2.schema.json`"
    )
    assert SCHEMA_FILE.read_text(encoding="utf-8") == manifest_schema_text()


def test_schema_command_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["manifest-schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["$id"].endswith("cloacina-manifest-v2.schema.json")
    assert printed["properties"]["format_version"]["enum"] == [1, FORMAT_VERSION]
    assert set(printed["required"]) >= {"format_version", "package", "wheel", "workflows", "builder"}


def test_manifest_round_trips_through_its_json() -> None:
    manifest = Manifest.model_validate(manifest_dict(make_wheel()))
    text = manifest.to_json()
    assert text.endswith("\n")
    assert Manifest.model_validate_json(text) == manifest
    assert json.loads(text)["created_at"] == "1980-01-01T00:00:00Z"
    assert manifest.wheel_members() == ["wheels/demo_pkg-1.0.0-py3-none-any.whl"]
    assert manifest.workflows[0].key == "demo_pkg::flow"
    assert manifest.workflows[0].tasks[0].retry.attempts == 2


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"format_version": 3}, "format_version"),
        ({"surprise": 1}, "surprise"),
        ({"workflows": []}, "workflows"),
        ({"created_at": "yesterday"}, "created_at"),
    ],
)
def test_manifest_rejects(change: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError) as info:
        Manifest.model_validate({**manifest_dict(make_wheel()), **change})
    assert where in str(info.value)


def test_task_fields_follow_the_kit() -> None:
    data = manifest_dict(make_wheel())
    data["workflows"][0]["tasks"][0]["retry"] = {"attempts": 2, "backoff": "sometimes"}
    with pytest.raises(ValidationError, match="backoff"):
        Manifest.model_validate(data)


def _with_triggers(*per_workflow: list[dict[str, object]], version: int = 2) -> dict[str, object]:
    data = manifest_dict(make_wheel())
    data["format_version"] = version
    first = data["workflows"][0]
    data["workflows"] = [{**first, "name": f"flow{i}", "triggers": t} for i, t in enumerate(per_workflow)]
    return data


def test_the_manifest_records_each_trigger_with_the_workflows_it_starts() -> None:
    spec = {"name": "inbox", "poll_interval_s": 5, "timeout_s": 2}
    manifest = Manifest.model_validate(_with_triggers([spec], [spec], []))
    assert {name: keys for name, (_s, keys) in manifest.trigger_subscribers().items()} == {
        "inbox": ("demo_pkg::flow0", "demo_pkg::flow1")
    }
    assert Manifest.model_validate_json(manifest.to_json()) == manifest


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (lambda: _with_triggers([{"name": "inbox", "poll_interval_s": 5, "timeout_s": 2}], version=1), "no triggers"),
        (
            lambda: _with_triggers(
                [{"name": "inbox", "poll_interval_s": 5, "timeout_s": 2}],
                [{"name": "inbox", "poll_interval_s": 9, "timeout_s": 2}],
            ),
            "trigger 'inbox' is declared twice with different settings",
        ),
        (lambda: _with_triggers([{"name": "inbox", "poll_interval_s": 0, "timeout_s": 2}]), "poll_interval_s"),
    ],
)
def test_the_manifest_refuses_bad_triggers(data: object, expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        Manifest.model_validate(data())  # type: ignore[operator]
