"""Only regular files under MAX_ARCHIVE_SIZE are read as archives: devices, FIFOs, sockets,
directories and links to them are refused with one message naming what the path is, exit 1."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from cloacina_host import ArchiveError, read_archive
from cloacina_host._packaging._source import MAX_ARCHIVE_SIZE, read_archive_file
from cloacina_host.cli import main


def _fifo(tmp: Path) -> Path:
    path = tmp / "pipe.cloacina"
    os.mkfifo(path)
    return path


def _socket(tmp: Path) -> Path:
    path = tmp / "s.cloacina"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()
    return path


def _link_to_zero(tmp: Path) -> Path:
    path = tmp / "zero.cloacina"
    path.symlink_to("/dev/zero")
    return path


def _directory(tmp: Path) -> Path:
    path = tmp / "dir.cloacina"
    path.mkdir()
    return path


def _sparse(tmp: Path) -> Path:
    path = tmp / "sparse.cloacina"
    with path.open("wb") as f:
        f.truncate(6 * 1024**3)  # 6 GiB, no blocks
    return path


CASES = {
    "/dev/zero": (lambda _tmp: Path("/dev/zero"), "is a character device, not a .cloacina file."),
    "fifo": (_fifo, "is a FIFO (named pipe), not a .cloacina file."),
    "socket": (_socket, "is a socket, not a .cloacina file."),
    "symlink to /dev/zero": (_link_to_zero, "is a character device (through a symbolic link), not a .cloacina file."),
    "directory": (_directory, "is a directory, not a .cloacina file."),
    "6 GiB sparse file": (_sparse, f"more than the limit of {MAX_ARCHIVE_SIZE:,} (MAX_ARCHIVE_SIZE)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_with_what_the_path_is(case: str, tmp_path: Path) -> None:
    make, message = CASES[case]
    path = make(tmp_path)
    with pytest.raises(ArchiveError) as info:
        read_archive_file(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    assert info.value.exit_status == 1
    with pytest.raises(ArchiveError, match=r"MAX_ARCHIVE_SIZE|not a \.cloacina file"):
        read_archive(path)


@pytest.mark.parametrize("command", ["inspect", "validate"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_exit_1(case: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make, message = CASES[case]
    path = make(tmp_path)
    if command == "validate" and case == "directory":
        return  # validate packages a project directory: covered by its own tests
    assert main([command, str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: ")
    assert message in err
    assert "Traceback" not in err


def test_a_regular_file_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "a.cloacina"
    path.write_bytes(b"PK" + bytes(range(256)) * 5000)
    assert read_archive_file(path) == path.read_bytes()
    with pytest.raises(ArchiveError, match="more than the limit of 100"):
        read_archive_file(path, max_size=100)
