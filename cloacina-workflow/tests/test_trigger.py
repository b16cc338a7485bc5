"""``@trigger`` and ``@workflow(triggers=...)``: checked at decoration, recorded by ``describe()``."""

from __future__ import annotations

import asyncio
import re
import threading

import pytest

from cloacina_workflow import Context, Fire, PollInfo, Skip, WorkflowDefinitionError, task, trigger, workflow


@trigger(name="kit_ready", poll_interval_s=5)
def kit_ready(info: PollInfo) -> Fire:
    return Fire({"from": info.trigger, "last": info.last_fire_at})


def _flow(*triggers: object) -> object:
    @workflow(name="watched", package="pkg", triggers=list(triggers))  # type: ignore[arg-type]
    class watched:
        @task(id="only")
        def only(ctx: Context) -> None:
            ctx.set("done", True)

    return watched


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"poll_interval_s": 0}, "poll_interval_s: Input should be greater than or equal to 0.1"),
        ({"poll_interval_s": 100_000}, "poll_interval_s: Input should be less than or equal to 86400"),
        ({"poll_interval_s": "often"}, "poll_interval_s: Input should be a valid number"),
        ({"poll_interval_s": 5, "timeout_s": 0}, "timeout_s: Input should be greater than 0"),
        ({"poll_interval_s": 5, "name": "has space"}, "name: String should match pattern"),
    ],
)
def test_a_bad_trigger_is_refused_with_the_fix(kwargs: dict[str, object], expected: str) -> None:
    with pytest.raises(WorkflowDefinitionError) as info:
        trigger(**kwargs)(lambda info: None)  # type: ignore[arg-type]
    assert expected in str(info.value)
    assert "Give a name of letters" in str(info.value)


def test_a_trigger_function_takes_one_argument() -> None:
    with pytest.raises(WorkflowDefinitionError, match="must take one argument"):

        @trigger(name="no_args", poll_interval_s=1)
        def no_args() -> None:
            return None


def test_workflows_subscribe_by_object_or_by_name_and_describe_records_them() -> None:
    by_name = _flow("kit_ready")
    by_object = _flow(kit_ready)
    assert by_name.triggers == by_object.triggers == (kit_ready,)  # type: ignore[attr-defined]
    assert by_name.describe()["triggers"] == [  # type: ignore[attr-defined]
        {"name": "kit_ready", "poll_interval_s": 5.0, "timeout_s": 5.0}
    ]
    assert "triggers" not in _flow().describe()  # type: ignore[attr-defined]
    assert by_name.fingerprint() == _flow().fingerprint()  # type: ignore[attr-defined]


def test_unknown_and_repeated_trigger_names_are_refused() -> None:
    with pytest.raises(WorkflowDefinitionError, match="subscribes to trigger 'nope', which is not defined"):
        _flow("nope")
    with pytest.raises(WorkflowDefinitionError, match="subscribes to trigger 'kit_ready' twice"):
        _flow(kit_ready, "kit_ready")
    with pytest.raises(WorkflowDefinitionError, match="give @trigger functions or their names"):
        _flow(42)


def test_poll_returns_fire_or_none() -> None:
    assert asyncio.run(kit_ready.poll(PollInfo("kit_ready", 1.5))) == Fire({"from": "kit_ready", "last": 1.5})

    @trigger(name="kit_skip", poll_interval_s=1)
    async def skip(info: PollInfo) -> Skip:
        return Skip("nothing new")

    assert asyncio.run(skip.poll(PollInfo("kit_skip"))) is None

    @trigger(name="kit_wrong", poll_interval_s=1)
    def wrong(info: PollInfo) -> object:
        return {"not": "a Fire"}

    with pytest.raises(TypeError, match=re.escape("return Fire({...}) to fire, or None / Skip() for not now")):
        asyncio.run(wrong.poll(PollInfo("kit_wrong")))

    @trigger(name="kit_not_json", poll_interval_s=1)
    def not_json(info: PollInfo) -> Fire:
        return Fire({"when": object()})

    with pytest.raises(TypeError, match="fired with a context that is not JSON"):
        asyncio.run(not_json.poll(PollInfo("kit_not_json")))


def test_a_hanging_plain_poll_holds_one_thread_until_it_ends() -> None:
    release = threading.Event()

    @trigger(name="kit_hangs", poll_interval_s=1)
    def hangs(info: PollInfo) -> Fire:
        release.wait(30)
        return Fire({"late": True})

    async def timed_out() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(hangs.poll(PollInfo("kit_hangs")), 0.05)

    asyncio.run(timed_out())
    with pytest.raises(RuntimeError, match="its previous poll is still running"):
        asyncio.run(hangs.poll(PollInfo("kit_hangs")))
    release.set()
    assert hangs._thread is not None
    hangs._thread.join(30)
    assert asyncio.run(hangs.poll(PollInfo("kit_hangs"))) == Fire({"late": True})
