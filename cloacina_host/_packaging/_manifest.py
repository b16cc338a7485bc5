"""The manifest of a ``.cloacina`` archive: a pydantic model, versioned, with a published JSON Schema.

``manifest.json`` is the archive's first member. It is written by ``package`` from the built wheel
and from the task graph read in a separate process, and it is all ``inspect`` needs: no package code
runs to show it. ``schemas/cloacina-manifest-v2.schema.json`` is ``manifest_json_schema()``.

Format versions: 1, the first; 2 adds what a workflow declares about when it runs (``schedules``
now; triggers and input schemas go beside it). This host writes 2 and reads both: a version-1
manifest reads as one whose workflows declare nothing of the kind.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cloacina_workflow import Schedule, TaskSpec, TriggerSpec

#: The ``format_version`` this host writes.
FORMAT_VERSION: Literal[2] = 2
#: Every ``format_version`` this host reads.
READABLE_FORMAT_VERSIONS: tuple[int, ...] = (1, 2)
#: The archive member that holds the manifest; always the first member.
MANIFEST_NAME = "manifest.json"
#: Where wheels live inside the archive.
WHEELS_DIR = "wheels/"
SCHEMA_ID = "https://cloacina.dev/schemas/cloacina-manifest-v2.schema.json"

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="Lower-case hex SHA-256 of the file.")]
WheelFilename = Annotated[str, Field(pattern=r"^[^/\\]+\.whl$", max_length=255)]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_\-.]*$")]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PackageInfo(_Model):
    """The distribution, as its wheel's METADATA describes it."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
    version: str = Field(min_length=1, max_length=100)
    summary: str | None = None
    author: str | None = None
    license: str | None = None
    requires_python: str | None = None
    requirements: tuple[str, ...] = ()


class WheelTag(_Model):
    """One compatibility tag of a wheel (PEP 425): ``python-abi-platform``."""

    python: str = Field(min_length=1, max_length=100)
    abi: str = Field(min_length=1, max_length=100)
    platform: str = Field(min_length=1, max_length=200)

    def __str__(self) -> str:
        return f"{self.python}-{self.abi}-{self.platform}"


class WheelInfo(_Model):
    """The package's own wheel: ``wheels/<filename>`` in the archive."""

    filename: WheelFilename
    sha256: Sha256
    size: int = Field(ge=0)
    tags: tuple[WheelTag, ...] = Field(min_length=1)
    pure: bool = Field(description="True when every tag is py*-none-any: no compiled code, any platform.")


class BundledWheel(_Model):
    """A dependency wheel bundled with ``package --bundle-deps``: ``wheels/<filename>``."""

    filename: WheelFilename
    sha256: Sha256
    size: int = Field(ge=0)


class EntryPointRef(_Model):
    """A ``cloacina.workflows`` entry point of the wheel: ``name = value``."""

    name: str = Field(min_length=1, max_length=200)
    value: str = Field(min_length=1, max_length=500)

    def __str__(self) -> str:
        return f"{self.name} = {self.value}"


class ManifestTask(TaskSpec):
    """A task: the kit's ``TaskSpec`` (id, dependencies, retry, timeout_s, docstring) and its function."""

    function: str | None = Field(default=None, description="Qualified name of the task function.")


class ManifestWorkflow(_Model):
    """A workflow of the package, as loading the wheel in a separate process found it."""

    name: Name
    package: Name
    description: str = ""
    author: str | None = None
    entry_point: EntryPointRef
    fingerprint: str = Field(
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="Workflow.fingerprint(): sha256 over canonical JSON of the structure and each task's code.",
    )
    tasks: tuple[ManifestTask, ...] = Field(min_length=1, description="In execution order.")
    schedules: tuple[Schedule, ...] = Field(
        default=(), max_length=100, description="Format 2: cron schedules the host runs while the version is active."
    )
    triggers: tuple[TriggerSpec, ...] = Field(
        default=(), max_length=100, description="Format 2: poll triggers whose firings start this workflow."
    )
    input_schema: dict[str, Any] | None = Field(
        default=None,
        description="Format 2: JSON Schema of the input model (@workflow(input=...)), checked at every start.",
    )

    @model_validator(mode="after")
    def _unique_schedule_names(self) -> ManifestWorkflow:
        names = [s.name for s in self.schedules]
        if None in names or len(set(names)) != len(names):
            raise ValueError(f"workflow {self.key}: every schedule needs a name, unique within the workflow")
        return self

    @property
    def key(self) -> str:
        return f"{self.package}::{self.name}"


class BuilderInfo(_Model):
    name: Literal["cloacina-host"] = "cloacina-host"
    version: str = Field(min_length=1, max_length=100)


class Manifest(_Model):
    """``manifest.json``: everything the registry and ``inspect`` know about an archive."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="Cloacina package manifest")

    format_version: Literal[1, 2] = Field(description="Manifest format; readers refuse versions they do not know.")
    package: PackageInfo
    wheel: WheelInfo
    workflows: tuple[ManifestWorkflow, ...] = Field(min_length=1)
    bundled_wheels: tuple[BundledWheel, ...] = ()
    cloacina_workflow_version: str = Field(
        min_length=1, max_length=100, description="Version of the cloacina-workflow kit the graph was read with."
    )
    builder: BuilderInfo
    created_at: datetime = Field(description="SOURCE_DATE_EPOCH when set, else 1980-01-01T00:00:00Z (reproducible).")

    @model_validator(mode="after")
    def _fields_of_its_version(self) -> Manifest:
        if self.format_version == 1 and any(wf.schedules for wf in self.workflows):
            raise ValueError("format_version 1 has no schedules; write format_version 2")
        if self.format_version == 1 and any(wf.triggers for wf in self.workflows):
            raise ValueError("format_version 1 has no triggers; write format_version 2")
        seen: dict[str, TriggerSpec] = {}
        for wf in self.workflows:
            for t in wf.triggers:
                if seen.setdefault(t.name, t) != t:
                    raise ValueError(f"trigger {t.name!r} is declared twice with different settings; name each once")
        if self.format_version == 1 and any(
            t.trigger_rule != "all_succeeded" or t.when for wf in self.workflows for t in wf.tasks
        ):
            raise ValueError("format_version 1 has no trigger rules or conditions; write format_version 2")
        if self.format_version == 1 and any(wf.input_schema is not None for wf in self.workflows):
            raise ValueError("format_version 1 has no input schemas; write format_version 2")
        return self

    def trigger_subscribers(self) -> dict[str, tuple[TriggerSpec, tuple[str, ...]]]:
        """Each trigger of the package, with the keys (``package::workflow``) of the workflows it starts."""
        found: dict[str, tuple[TriggerSpec, tuple[str, ...]]] = {}
        for wf in self.workflows:
            for t in wf.triggers:
                spec, keys = found.get(t.name, (t, ()))
                found[t.name] = (spec, (*keys, wf.key))
        return found

    def to_json(self) -> str:
        """The exact text stored in archives: stable key order, 2-space indent, final newline."""
        return self.model_dump_json(indent=2) + "\n"

    def wheel_members(self) -> list[str]:
        """Archive member names of every wheel, sorted: the package's own and bundled ones."""
        names = [self.wheel.filename, *(b.filename for b in self.bundled_wheels)]
        return sorted(WHEELS_DIR + n for n in names)


def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema of ``manifest.json`` (format versions 1 and 2), as published in ``schemas/``."""
    schema = Manifest.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def manifest_schema_text() -> str:
    return json.dumps(manifest_json_schema(), indent=2, sort_keys=True) + "\n"
