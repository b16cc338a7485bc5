"""Names a user types are checked whole: no trailing newline, NUL, look-alike, separator or 10k-character name."""

from __future__ import annotations

import pytest

from cloacina_host import WorkflowCatalog
from cloacina_host._discovery import check_tenant_of
from cloacina_host._errors import WorkflowNotFoundError
from cloacina_host._registry import RegistryError, TenantError, check_tenant_name, parse_requirement
from cloacina_host._registry._names import check_package_name, check_version
from cloacina_host.cli._text import safe_cell, safe_text

HOSTILE = [
    "acme\n",  # `$` in re.match accepts this one
    "acme\r\n",
    "\nacme",
    "ac\x00me",
    "acme\x1b[31m",
    "acme/../x",
    "acme\\x",
    "../acme",
    "ac me",
    "\u0430cme",  # a Cyrillic a
    "acmé",
    "acme\u200b",  # zero-width space
    "a" * 10_000,
    "acme'; DROP TABLE tenants; --",
    'acme"',
    "",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_tenant_names_are_refused(name: str) -> None:
    with pytest.raises(TenantError, match="is not allowed: use 1 to 63 lower-case letters") as info:
        check_tenant_name(name)
    assert len(str(info.value)) < 400  # a 10k-character name is not echoed whole
    for control in ("\n", "\x00", "\x1b"):
        assert control not in str(info.value)


@pytest.mark.parametrize("name", ["acme", "a", "t_2026", "a" * 63])
def test_safe_tenant_names_pass(name: str) -> None:
    assert check_tenant_name(name) == name


@pytest.mark.parametrize("name", ["a" * 64, "pg_catalog", "information_schema", "Acme", "1acme", "_acme"])
def test_tenant_names_postgresql_cannot_take_are_refused(name: str) -> None:
    with pytest.raises(TenantError):
        check_tenant_name(name)


@pytest.mark.parametrize("name", [n for n in HOSTILE if n != "a" * 10_000] + ["a" * 201, "-x", "x-"])
def test_hostile_package_names_are_refused(name: str) -> None:
    with pytest.raises(RegistryError, match="is not a distribution name"):
        check_package_name(name)


@pytest.mark.parametrize("version", ["1.0\n", "1.0\x00", "1.0/../x", "1.0 ", "1" * 101, "1.0'--", "¹.0"])
def test_hostile_versions_are_refused(version: str) -> None:
    with pytest.raises(RegistryError, match="is not a version"):
        check_version(version)


def test_requirements_parse_or_say_how_to_write_them() -> None:
    assert parse_requirement("simple-packaged-demo==1.0.0") == ("simple-packaged-demo", "1.0.0")
    assert parse_requirement(" reg_swap == 2.0.0+local.1 ") == ("reg_swap", "2.0.0+local.1")
    for bad in ("demo", "demo==", "==1.0", "demo=1.0"):
        with pytest.raises(RegistryError, match="write NAME==VERSION"):
            parse_requirement(bad)
    for bad in ("demo==1.0\n", "demo\n==1.0", "demo==1.0==2.0", "de/mo==1.0"):
        with pytest.raises(RegistryError, match=r"is not a (distribution name|version)"):
            parse_requirement(bad)


def test_a_namespace_of_another_tenant_is_not_found_naming_both() -> None:
    check_tenant_of("acme::pkg::wf", "acme")
    check_tenant_of("pkg::wf", "acme")
    check_tenant_of("other::pkg::wf", None)  # a catalog that knows no tenant
    with pytest.raises(WorkflowNotFoundError, match=r"belongs to tenant 'other', not to tenant 'acme'") as info:
        check_tenant_of("other::pkg::wf", "acme")
    assert info.value.exit_status == 3
    assert "'pkg::wf'" in str(info.value)
    assert "--tenant 'other'" in str(info.value)


def test_the_catalog_takes_its_tenant_from_the_registry_source_or_its_own_field() -> None:
    class Source:
        tenant = "acme"

        def catalog_entries(self) -> list[object]:
            return []

        async def aclose(self) -> None:
            pass

    catalog = WorkflowCatalog()
    assert catalog.current_tenant is None
    catalog.add_source(Source())  # type: ignore[arg-type]
    assert catalog.current_tenant == "acme"
    with pytest.raises(WorkflowNotFoundError, match="belongs to tenant 'other'"):
        catalog.resolve("other::pkg::wf")
    with pytest.raises(WorkflowNotFoundError, match="No workflow named 'acme::pkg::wf'"):
        catalog.resolve("acme::pkg::wf")  # the right tenant: looked up (and not there)
    catalog.tenant = "other"
    with pytest.raises(WorkflowNotFoundError, match="No workflow named"):
        catalog.resolve("other::pkg::wf")


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text → ok", "plain text → ok"),
        ("\x1b]0;pwned\x07title", "\\x1b]0;pwned\\x07title"),
        ("red\x1b[31m", "red\\x1b[31m"),
        ("two\nlines\ttab", "two\\nlines\\ttab"),
        ("c1\x9bx", "c1\\x9bx"),
        ("rtl\u202eabc", "rtl\\u202eabc"),
        ("nul\x00", "nul\\x00"),
        (None, ""),
    ],
)
def test_text_from_a_package_is_shown_with_controls_escaped(raw: str | None, shown: str) -> None:
    assert safe_text(raw) == shown


def test_cells_are_not_markup() -> None:
    from rich.console import Console

    console = Console(width=200, record=True, color_system=None)
    console.print(safe_cell("[red]not red[/] [/bogus]"))
    assert console.export_text().strip() == "[red]not red[/] [/bogus]"
