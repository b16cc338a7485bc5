"""What a fresh interpreter loads: the command line starts without the heavy libraries it does not use.

``import cloacina_host.cli`` (every ``cloacina-ctl`` command pays for it) loads neither SQLAlchemy,
pydantic, pluggy nor rich; ``inspect`` reads an archive without SQLAlchemy, pluggy, pypa build or
installer. Each check runs in a new interpreter (``sys.modules`` of this one is full of everything),
and the public names still import as before. Speed itself is measured by benchmarks/bench_packaging.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import cloacina_host
import cloacina_workflow

#: the heavy libraries, by top-level module name
HEAVY = ("sqlalchemy", "psycopg", "pydantic", "pydantic_core", "pluggy", "rich", "build", "installer", "cryptography")


def run(code: str) -> str:
    """Run ``code`` in a fresh interpreter; its stdout (it must succeed)."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def loaded_after(code: str) -> set[str]:
    """The top-level modules a fresh interpreter has imported after running ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.partition('.')[0] for m in sys.modules}})))"
    return set(json.loads(run(script).splitlines()[-1]))


@pytest.mark.parametrize("module", ["cloacina_host", "cloacina_host.cli", "cloacina_workflow"])
def test_importing_loads_no_heavy_library(module: str) -> None:
    assert loaded_after(f"import {module}") & set(HEAVY) == set()


def test_the_kit_loads_pydantic_and_pluggy_when_a_workflow_is_defined() -> None:
    code = (
        "from cloacina_workflow import Context, task, workflow\n"
        "@workflow(name='w')\n"
        "class w:\n"
        "    @task(id='t')\n"
        "    def t(ctx: Context) -> None: ...\n"
    )
    assert {"pydantic", "pluggy"} <= loaded_after(code)


def test_inspect_loads_no_database_plugin_or_build_machinery(reg_archives: dict[str, Path]) -> None:
    code = (
        "import contextlib, io\n"
        "from cloacina_host.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    assert main(['inspect', {str(reg_archives['demo'])!r}]) == 0\n"
        "assert 'simple_demo::data_processing' in out.getvalue()\n"
    )
    loaded = loaded_after(code)
    assert loaded & {"sqlalchemy", "psycopg", "pluggy", "build", "installer", "cryptography"} == set()
    assert {"pydantic", "rich"} <= loaded  # the manifest is validated, and shown as a tree


def test_inspect_of_a_signed_archive_verifies_offline(reg_archives: dict[str, Path], tmp_path: Path) -> None:
    """Verifying needs cryptography; with no database configured, trust is not looked up (no SQLAlchemy)."""
    from cloacina_host._packaging import generate_key_pair, load_signing_key, sign_archive

    generate_key_pair("k", tmp_path, passphrase=None)
    key = load_signing_key(tmp_path / "k.key", passphrase=lambda: b"")
    archive = tmp_path / "signed.cloacina"
    sign_archive(reg_archives["demo"], [key], output=archive)
    code = (
        "import contextlib, io, os\n"
        f"os.environ['CLOACINA_HOME'] = {str(tmp_path / 'no-home')!r}\n"
        "os.environ.pop('CLOACINA_DATABASE_URL', None)\n"
        "from cloacina_host.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    assert main(['inspect', {str(archive)!r}]) == 0\n"
        "assert 'verifies' in out.getvalue()\n"
    )
    loaded = loaded_after(code)
    assert "cryptography" in loaded
    assert loaded & {"sqlalchemy", "psycopg", "pluggy", "build", "installer"} == set()


@pytest.mark.parametrize("package", [cloacina_host, cloacina_workflow], ids=lambda p: p.__name__)
def test_every_public_name_imports(package: object) -> None:
    names = package.__all__  # type: ignore[attr-defined]
    code = f"from {package.__name__} import {', '.join(names)}"  # type: ignore[attr-defined]
    run(code)
    assert sorted(names) == sorted(n for n in dir(package) if n in names)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        package.nope  # type: ignore[attr-defined]  # noqa: B018


def test_kit_submodules_stay_reachable_as_attributes() -> None:
    run("import cloacina_workflow as k\nassert k.limits.MAX_JSON_DEPTH > 0 and k.hookspecs.hookspec is k.hookspec")
