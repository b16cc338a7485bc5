"""The capture buffer itself: lines, the cap (UTF-8 and JSON escapes included), threads and tasks apart."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from cloacina_host import _output as out


def test_lines_are_split_on_newlines_and_a_rest_is_kept_at_the_end() -> None:
    buf = out.AttemptOutput("t")
    buf.write("stdout", "one\ntw")
    buf.write("stdout", "o\nthree")
    buf.write("stderr", "err\n")
    buf.finish()
    assert [(line.stream, line.text) for line in buf.lines] == [
        ("stdout", "one"),
        ("stdout", "two"),
        ("stderr", "err"),
        ("stdout", "three"),
    ]
    text, cut = buf.stored()
    assert cut == 0
    assert out.decode(text) == buf.lines


def test_the_cap_keeps_the_start_and_counts_every_byte_cut() -> None:
    buf = out.AttemptOutput("t", cap=4096)
    written = 0
    for i in range(200):
        line = f'é"\\ line {i}\n'  # non-ASCII and JSON escapes: the stored form is larger than the text
        buf.write("stdout", line)
        written += len(line.encode())
    buf.finish()
    text, cut = buf.stored()
    assert text is not None
    assert len(text.encode()) <= 4096
    kept = buf.lines
    assert kept[0].text == 'é"\\ line 0'
    assert cut is not None
    assert cut > 0
    assert sum(len(line.text.encode()) + 1 for line in kept) + cut == written


def test_one_huge_line_keeps_its_start() -> None:
    buf = out.AttemptOutput("t", cap=1000)
    buf.write("stdout", "y" * 5000)
    buf.finish()
    (line,) = buf.lines
    assert line.text == "y" * len(line.text)
    assert 900 < len(line.text) < 1000
    assert buf.cut == 5000 - len(line.text)


def test_threads_and_tasks_each_write_to_their_own_attempt() -> None:
    first, second = out.AttemptOutput("first"), out.AttemptOutput("second")
    barrier = threading.Barrier(2, timeout=10)

    def speak(name: str) -> None:
        for i in range(50):
            print(f"{name} {i}")
            if i == 10:
                barrier.wait()

    threads = []
    for buf in (first, second):
        with out.capturing(buf):
            ctx = contextvars.copy_context()  # how the engine starts a plain task's thread
        threads.append(threading.Thread(target=ctx.run, args=(speak, buf.label)))
    with out.echo("quiet"):
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)

        async def task_speaks(buf: out.AttemptOutput) -> None:
            with out.capturing(buf):
                for i in range(3):
                    print(f"{buf.label} async {i}")
                    await asyncio.sleep(0)

        async def both() -> None:
            await asyncio.gather(task_speaks(first), task_speaks(second))

        asyncio.run(both())
    for buf in (first, second):
        buf.finish()
        expected = [f"{buf.label} {i}" for i in range(50)] + [f"{buf.label} async {i}" for i in range(3)]
        assert [line.text for line in buf.lines] == expected


def test_what_a_finished_attempt_writes_goes_to_the_stream(capsys: pytest.CaptureFixture[str]) -> None:
    buf = out.AttemptOutput("t")
    with out.capturing(buf):
        buf.finish()
        print("after the end")  # an abandoned thread that runs on: not lost, not kept
    assert buf.lines == ()
    assert "after the end" in capsys.readouterr().out
