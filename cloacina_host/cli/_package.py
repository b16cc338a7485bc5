"""``cloacina-ctl package | inspect | validate | new | manifest-schema``: the ``.cloacina`` archive.

Packaging modules are imported inside each command, so that other commands start fast.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._defaults import DEFAULT_LOAD_TIMEOUT_S
from ._common import Settings, global_options, pass_settings, print_json

if TYPE_CHECKING:
    from .._packaging import Manifest, PackageResult

_LOAD_TIMEOUT_HELP = (
    f"Seconds allowed for loading the package's entry points in a child process [default: {DEFAULT_LOAD_TIMEOUT_S:g}]."
)


def _progress(settings: Settings) -> Any:
    step = 0

    def say(message: str) -> None:
        nonlocal step
        step += 1
        settings.err.print(f"[dim]\\[{step}][/dim] {message}")

    return say


def _result_json(result: PackageResult) -> dict[str, Any]:
    m = result.manifest
    return {
        "path": str(result.path),
        "size": result.size,
        "sha256": result.sha256,
        "package": m.package.name,
        "version": m.package.version,
        "wheel": m.wheel.filename,
        "bundled_wheels": [b.filename for b in m.bundled_wheels],
        "workflows": [{"name": wf.key, "fingerprint": wf.fingerprint} for wf in m.workflows],
        "signed_by": list(result.signed_by),
        "build_seconds": round(result.build_seconds, 3),
        "total_seconds": round(result.total_seconds, 3),
    }


def _package(settings: Settings, directory: Path, output: Path, **options: Any) -> PackageResult:
    from .._packaging import PackagingError, package_workflow

    try:
        return package_workflow(directory, output, progress=_progress(settings), **options)
    except PackagingError as exc:
        if settings.verbose and exc.output:
            click.echo("--- build backend output ---", err=True)
            click.echo(exc.output.rstrip(), err=True)
            click.echo("--- end of build backend output ---", err=True)
        raise


def _packaging_options(f: Any) -> Any:
    f = click.option(
        "--load-timeout",
        type=click.FloatRange(min=0.1),
        default=DEFAULT_LOAD_TIMEOUT_S,
        show_default=False,
        help=_LOAD_TIMEOUT_HELP,
    )(f)
    f = click.option(
        "--no-isolation",
        is_flag=True,
        help="Build in this environment instead of a fresh isolated one (offline use; the build "
        "requirements, e.g. hatchling, must be installed here).",
    )(f)
    return f


@click.command("package")
@click.argument("directory", type=click.Path(path_type=Path), default=".")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The .cloacina file to write.",
)
@_packaging_options
@click.option(
    "--bundle-deps",
    is_flag=True,
    help="Add wheels for the package's requirements and theirs (not cloacina-workflow nor what it needs: "
    "the host provides them).",
)
@click.option(
    "--find-links", multiple=True, metavar="DIR|URL", help="With --bundle-deps: also look for wheels here (repeatable)."
)
@click.option("--no-index", is_flag=True, help="With --bundle-deps: do not use the package index.")
@click.option(
    "--sign",
    "sign_keys",
    multiple=True,
    metavar="KEY",
    help="Sign the archive with this private key file (or a key's NAME under <home>/signing-keys); repeatable. "
    "An encrypted key's passphrase: $CLOACINA_SIGNING_PASSPHRASE, else asked on the terminal.",
)
@global_options
@pass_settings
def package_command(
    settings: Settings,
    directory: Path,
    output: Path,
    load_timeout: float,
    no_isolation: bool,
    bundle_deps: bool,
    find_links: tuple[str, ...],
    no_index: bool,
    sign_keys: tuple[str, ...],
) -> None:
    """Build DIRECTORY's wheel with pypa build and write the .cloacina archive FILE.

    \b
    Steps: build the wheel (isolated, like `python -m build`), read its METADATA, tags and
    cloacina.workflows entry points, read every workflow's task graph by loading the wheel in a
    separate process, write manifest.json + wheels/ reproducibly (SOURCE_DATE_EPOCH honoured),
    and with --sign a signature over the manifest per key (signatures/; still reproducible).
    Progress goes to stderr; the archive's path and size to stdout (an object with --json).
    """
    if not output.parent.is_dir():  # checked before the build: a mistyped path is not created
        from .._errors import UsageError

        raise UsageError(
            f"Cannot write {output}: the directory {output.parent} does not exist. "
            f"Create it first (mkdir -p {output.parent}) or choose another -o."
        )
    keys = []
    if sign_keys:  # read (and decrypted) before the build: a wrong passphrase fails at once
        from ._signing import load_keys

        keys = load_keys(settings, sign_keys)
    result = _package(
        settings,
        directory,
        output,
        isolation=not no_isolation,
        bundle_deps=bundle_deps,
        find_links=find_links,
        no_index=no_index,
        load_timeout_s=load_timeout,
        sign=keys,
    )
    if settings.json:
        print_json(_result_json(result))
    else:
        settings.out.print(f"{result.path} ({result.size:,} bytes)")


@click.command("inspect")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--graph", type=click.Choice(["mermaid", "dot"]), help="Print the workflows' DAG as Mermaid or Graphviz dot."
)
@global_options
@pass_settings
def inspect_command(settings: Settings, file: Path, graph: str | None) -> None:
    """Show what the archive FILE holds, without running any of its code.

    \b
    Package metadata (name, version, author, description), each workflow with its tasks and
    dependencies as a tree, retry settings, platform (python/abi/platform tags, pure or not), the
    fingerprints and the builder's version, and each signature: its key's fingerprint and name,
    whether it verifies, and which key of the tenant's trust store it matches (looked up when a
    database is configured or the home has one; offline otherwise). --json prints manifest.json
    (with a "signatures" list added when the archive is signed); --graph draws the DAG.
    The manifest's JSON Schema: `cloacina-ctl manifest-schema`.
    """
    from .._packaging import read_archive
    from .._packaging._render import dot, inspect_renderable, mermaid

    archive = read_archive(file, require_compatible=False, verify_signatures=False)
    manifest: Manifest = archive.manifest
    if graph == "mermaid":
        click.echo(mermaid(manifest), nl=False)
    elif graph == "dot":
        click.echo(dot(manifest), nl=False)
    elif settings.json:
        data = manifest.model_dump(mode="json")
        if archive.signatures:
            data["signatures"] = _signature_rows(settings, archive)
        print_json(data)
    else:
        settings.out.print(inspect_renderable(manifest, archive_size=archive.size))
        if archive.signatures:
            _print_signatures(settings, _signature_rows(settings, archive))


def _trust_state(settings: Settings) -> tuple[Any, str | None]:
    """The tenant's trust store, read-only, when a database is configured (or the home has one); else a note."""
    from .._errors import HostError
    from .._settings import cloacina_home

    if not settings.database_url and not (cloacina_home(settings.home) / "cloacina.db").exists():
        return None, "no database configured: trust not looked up (--database-url)"
    try:
        from .._registry import TrustStore

        return TrustStore(settings.database(read_only=True), settings.tenant).state(), None
    except HostError as exc:
        return None, f"trust not looked up: {exc}"


def _signature_rows(settings: Settings, archive: Any) -> list[dict[str, Any]]:
    from .._packaging import check_signatures

    state, note = _trust_state(settings)
    rows = []
    for check in check_signatures(archive.signatures, archive.manifest_bytes):
        e = check.entry
        key = None if state is None else state.keys.get(e.fingerprint)
        rows.append(
            {
                "member": e.member,
                "fingerprint": e.fingerprint,
                "key_name": e.key_name,
                "verified": check.verified,
                "problem": check.problem,
                "tenant": settings.tenant,
                "trust": None if state is None else state.standing(e.fingerprint),
                "trusted_as": None if key is None else key.name,
                "note": note,
            }
        )
    return rows


def _print_signatures(settings: Settings, rows: list[dict[str, Any]]) -> None:
    from rich.text import Text

    settings.out.print(Text(""))
    settings.out.print(Text("Signatures", style="bold"))
    for r in rows:
        line = Text(f"  {r['key_name']}  {r['fingerprint']}  ")
        line.append(
            "verifies" if r["verified"] else f"DOES NOT VERIFY: {r['problem']}", "green" if r["verified"] else "red"
        )
        if r["trust"] is None:
            line.append(f"  ({r['note']})", "dim")
        elif r["trusted_as"] is not None:
            line.append(f"  {r['trust']} in tenant {r['tenant']!r} as {r['trusted_as']!r}")
        else:
            line.append(f"  not trusted in tenant {r['tenant']!r}")
        settings.out.print(line)  # names and fingerprints are checked patterns: nothing to escape


@click.command("validate")
@click.argument("target", metavar="FILE|DIR", type=click.Path(path_type=Path))
@_packaging_options
@global_options
@pass_settings
def validate_command(settings: Settings, target: Path, load_timeout: float, no_isolation: bool) -> None:
    """Run every check the registry runs on FILE (or on DIR, packaged to a temporary file), without registering.

    \b
    Checks: zip structure and limits, the manifest (first, JSON, format version, schema), wheel
    sizes and sha256, that each wheel is a wheel whose tags this interpreter loads, no module
    shadowing the standard library, valid task graphs, and that the entry points load (in a child
    process, within --load-timeout) into exactly the workflows the manifest lists. Exit 1 if invalid.
    """
    from .._errors import HostError
    from .._packaging import validate_archive

    try:
        if target.is_dir():
            with tempfile.TemporaryDirectory(prefix="cloacina-validate-") as tmp:
                result = _package(
                    settings,
                    target,
                    Path(tmp) / "package.cloacina",
                    isolation=not no_isolation,
                    load_timeout_s=load_timeout,
                )
                report = validate_archive(result.path, load_timeout_s=load_timeout)
        else:
            report = validate_archive(target, load_timeout_s=load_timeout)
    except HostError as exc:
        if settings.json:
            print_json(
                {"valid": False, "target": str(target), "error": str(exc), "member": getattr(exc, "member", None)}
            )
        raise
    m = report.manifest
    if settings.json:
        print_json(
            {
                "valid": True,
                "target": str(target),
                "package": m.package.name,
                "version": m.package.version,
                "sha256": report.archive.sha256,
                "workflows": [wf.key for wf in m.workflows],
                "signed_by": [e.to_json() for e in report.archive.signatures],
                "checks": list(report.checks),
            }
        )
        return
    for check in report.checks:
        settings.err.print(f"[green]✓[/green] {check}")
    settings.out.print(
        f"{target}: valid ({m.package.name} {m.package.version}; {', '.join(wf.key for wf in m.workflows)})"
    )


@click.command("new")
@click.argument("name")
@click.option(
    "--directory", type=click.Path(path_type=Path, file_okay=False), help="Where to create it [default: ./NAME]."
)
@click.option("--author", default="Your Name", show_default=True, help="The author recorded in pyproject.toml.")
@global_options
@pass_settings
def new_command(settings: Settings, name: str, directory: Path | None, author: str) -> None:
    """Create NAME/, a workflow package project: pyproject.toml, a three-task workflow, its tests.

    It passes its own tests (`pytest`) and packages (`cloacina-ctl package NAME -o NAME.cloacina`) as is.
    """
    from .._packaging._scaffold import scaffold

    files = scaffold(name, directory, author=author)
    root = files[0].parent
    if settings.json:
        print_json({"directory": str(root), "files": [str(f.relative_to(root)) for f in files]})
        return
    for f in files:
        settings.err.print(f"  created {f.relative_to(root.parent)}")
    settings.out.print(f"{root}")
    settings.err.print(f"Next: cd {root.name} && pytest && cloacina-ctl package . -o {name}.cloacina")


@click.command("manifest-schema")
@global_options
def manifest_schema_command() -> None:
    """Print the JSON Schema of manifest.json (the current format version, 2), as published in schemas/."""
    from .._packaging import manifest_schema_text

    click.echo(manifest_schema_text(), nl=False)
