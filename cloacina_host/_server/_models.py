"""The API's request and response bodies. Each response is built from the same JSON view the command
line prints with ``--json`` (``_engine._views``, the registry's ``to_json``), validated into these models,
so the two cannot drift apart silently; extra members are refused (``extra="forbid"``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorResponse(Model):
    """Every refusal: the message the command line prints, and the exit status it would exit with."""

    error: str
    exit_status: int
    problems: list[str] = Field(default_factory=list, description="One text per wrong field, when there are several")


class Health(Model):
    status: Literal["ok"]


class Ready(Model):
    status: Literal["ready", "unready"]
    problems: list[str] = Field(default_factory=list)


class Whoami(Model):
    key_id: str
    tenant: str
    role: Literal["admin", "write", "read"]
    name: str | None


# -- packages --------------------------------------------------------------------------------------


class RegisteredWorkflowModel(Model):
    name: str
    description: str
    fingerprint: str
    entry_point: str
    tasks: list[str]
    dependencies: dict[str, list[str]]


class PackageSummary(Model):
    name: str
    tenant: str
    active_version: str | None
    versions: list[str]
    workflows: list[str]


class PackagesList(Model):
    tenant: str
    packages: list[PackageSummary]


class SignerModel(Model):
    """A key that signed a registered version (``packages show``'s signers)."""

    fingerprint: str
    name: str
    trusted_at_registration: bool
    trust: Literal["trusted", "revoked", "not trusted"]


class PackageVersionModel(Model):
    version: str
    active: bool
    sha256: str
    size: int
    registered_at: str | None
    running_executions: int
    signed_by: list[SignerModel]
    workflows: list[RegisteredWorkflowModel]


class PackageDetail(Model):
    name: str
    tenant: str
    active_version: str | None
    versions: list[PackageVersionModel]
    workflows: list[str]


class RegisterResponse(Model):
    name: str
    version: str
    tenant: str
    status: Literal["registered", "replaced", "unchanged"]
    sha256: str
    size: int
    active: bool
    previous_active: str | None
    workflows: list[RegisteredWorkflowModel]
    install_dir: str
    signed_by: list[SignerModel]
    seconds: float


class ActivateResponse(Model):
    name: str
    tenant: str
    active_version: str | None
    previous: str | None


class RemoveResponse(Model):
    name: str
    tenant: str
    version: str
    was_active: bool
    running_executions: int


# -- workflows -------------------------------------------------------------------------------------


class WorkflowSourceModel(Model):
    kind: str
    distribution: str | None
    version: str | None
    entry_point: str | None


class GraphNode(Model):
    task_id: str
    dependencies: list[str]


class WorkflowModel(Model):
    namespace: str
    package: str
    name: str
    description: str
    author: str | None
    tasks: list[str]
    task_count: int
    source: WorkflowSourceModel
    fingerprint: str | None
    graph: list[GraphNode]


class WorkflowProblem(Model):
    """A plugin that failed to load (``kind`` load), or a workflow more than one source offers (conflict)."""

    kind: Literal["load", "conflict"]
    message: str
    distribution: str | None = None
    entry_point: str | None = None
    workflow: str | None = None
    sources: list[str] | None = None
    entries: list[dict[str, Any]] | None = None


class WorkflowsList(Model):
    tenant: str
    workflows: list[WorkflowModel]
    problems: list[WorkflowProblem] = Field(default_factory=list)


# -- executions ------------------------------------------------------------------------------------


class SubmitRequest(Model):
    """``POST /api/v1/executions``: what ``cloacina-ctl run WORKFLOW --context JSON --detach`` stores."""

    workflow: str = Field(min_length=1, max_length=1000, description="NAME, PACKAGE::NAME or the full namespace")
    context: dict[str, Any] = Field(default_factory=dict, description="The initial context (a JSON object)")


class Submitted(Model):
    execution_id: str
    workflow: str


class ExecutionSummary(Model):
    id: str
    workflow: str
    package: str | None
    package_version: str | None
    workflow_fingerprint: str | None
    status: str
    error: str | None
    created_at: str | None
    started_at: str | None
    rerun_of: str | None
    started_by: str | None
    finished_at: str | None
    duration_s: float | None


class ExecutionsList(Model):
    executions: list[ExecutionSummary]


class OutputLineModel(Model):
    t: str | None
    stream: str
    level: str | None
    text: str


class AttemptModel(Model):
    attempt: int
    status: str
    started_at: str | None
    finished_at: str | None
    duration_s: float | None
    error: str | None
    traceback: str | None
    output: list[OutputLineModel]
    output_cut: int


class TaskModel(Model):
    task_id: str
    status: str
    attempts: list[AttemptModel]
    started_at: str | None
    finished_at: str | None
    duration_s: float | None
    error: str | None
    ready_at: str | None  # a deferred (or retry-waiting) task runs again from then


class EventModel(Model):
    seq: int
    at: str | None
    kind: str
    actor: str
    detail: dict[str, Any]


class ExecutionDetail(ExecutionSummary):
    tenant: str
    context: dict[str, Any] | None
    final_context: dict[str, Any] | None
    cancel_requested_at: str | None
    events: list[EventModel]
    tasks: list[TaskModel]


class AttemptLogs(Model):
    task_id: str
    attempt: int
    status: str
    output: list[OutputLineModel]
    output_cut: int


class ExecutionLogs(Model):
    execution_id: str
    status: str
    attempts: list[AttemptLogs]


class CancelResponse(Model):
    execution_id: str
    ended: bool
    owner: str | None
    status: str


class RetryRequest(Model):
    latest: bool = Field(default=False, description="Run on the package's active version, not the one it ran")


# -- schedules and triggers ------------------------------------------------------------------------


class NextFire(Model):
    utc: str | None
    local: str | None


class LastScheduleFire(Model):
    utc: str | None
    execution_id: str | None


class ScheduleModel(Model):
    workflow: str
    namespace: str
    name: str
    cron: str
    timezone: str
    context: dict[str, Any]
    catchup: str
    max_catchup: int
    paused: bool
    source: str
    package_version: str | None
    next_fire: NextFire | None
    last_fire: LastScheduleFire | None


class SchedulesList(Model):
    tenant: str
    schedules: list[ScheduleModel]


class ScheduleRef(Model):
    workflow: str
    name: str


class SchedulesChanged(Model):
    changed: list[ScheduleRef]
    paused: bool


class LastTriggerFire(Model):
    utc: str | None
    execution_ids: list[str]


class LastTriggerError(Model):
    utc: str | None
    error: str


class TriggerModel(Model):
    trigger: str
    package: str
    name: str
    poll_interval_s: float
    timeout_s: float
    workflows: list[str]
    paused: bool
    source: str
    package_version: str | None
    last_poll: str | None
    next_poll: str | None
    last_fire: LastTriggerFire | None
    last_error: LastTriggerError | None


class TriggersList(Model):
    tenant: str
    triggers: list[TriggerModel]


class TriggerChanged(Model):
    trigger: str
    paused: bool
    changed: bool


class FireRequest(Model):
    context: dict[str, Any] = Field(default_factory=dict, description="The firing's context (a JSON object)")


class FiredExecution(Model):
    workflow: str
    execution_id: str


class TriggerFired(Model):
    trigger: str
    executions: list[FiredExecution]


# -- API keys --------------------------------------------------------------------------------------


class ApiKeyModel(Model):
    id: str
    tenant: str
    role: Literal["admin", "write", "read"]
    name: str | None
    created_at: float
    revoked_at: float | None


class ApiKeysList(Model):
    api_keys: list[ApiKeyModel]


class CreateKeyRequest(Model):
    role: Literal["admin", "write", "read"]
    name: str | None = Field(default=None, max_length=200)


class CreatedKeyModel(ApiKeyModel):
    key: str = Field(description="The whole key: shown this once, never stored")


# -- events ----------------------------------------------------------------------------------------


class ExecutionChanged(Model):
    """SSE ``event: execution``: an execution appeared or its status changed."""

    execution: ExecutionSummary


class TaskChanged(Model):
    """SSE ``event: task``: a task of an execution changed status or started another attempt."""

    execution_id: str
    task_id: str
    status: str
    attempts: int
    error: str | None


# -- tenants and trust -----------------------------------------------------------------------------


class TenantModel(Model):
    name: str
    created_at: str | None


class TenantsList(Model):
    """The tenants the calling key sees: its own (a key belongs to one tenant and sees no other)."""

    tenants: list[TenantModel]


class PolicyModel(Model):
    """A tenant's signature policy (``tenants policy``); ``previous``: the policy before this request."""

    tenant: str
    require_signatures: bool
    previous: bool
    trusted_keys: int


class PolicyRequest(Model):
    require_signatures: bool


class TrustedKeyModel(Model):
    name: str
    fingerprint: str
    trusted: bool
    added_at: str | None
    revoked_at: str | None
    public_key: str


class TrustList(Model):
    tenant: str
    require_signatures: bool
    keys: list[TrustedKeyModel]


class TrustAddRequest(Model):
    name: str = Field(max_length=200, description="The key's name in the tenant's trust store")
    public_key: str = Field(
        max_length=16384,
        description="The public key's text: SubjectPublicKeyInfo PEM, its one-line base64 body, or an "
        "`ssh-ed25519 ...` line (never a file name: the server reads no file for it)",
    )


class TrustAdded(TrustedKeyModel):
    tenant: str
    status: Literal["added", "restored", "unchanged"]


class SignedVersionModel(Model):
    name: str
    version: str
    active: bool


class TrustRevoked(Model):
    tenant: str
    revoked: bool = Field(description="False when the key was revoked already")
    key: TrustedKeyModel
    signed_versions: list[SignedVersionModel] = Field(description="They keep running until deactivated")
