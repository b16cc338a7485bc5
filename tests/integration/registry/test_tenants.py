"""Tenants on both backends: a schema (PostgreSQL) or a file (SQLite) each; none sees another's work."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloacina_host import DefaultRunner, NotFoundError, Registry, TenantError, create_tenant, list_tenants

pytestmark = pytest.mark.slow


def test_the_same_package_at_different_versions_in_two_tenants(
    database_url: str, home: Path, tenant_name: str, reg_archives: dict[str, Path]
) -> None:
    info = create_tenant(database_url, home=home, name=tenant_name)
    assert info.name == tenant_name
    assert [t.name for t in list_tenants(database_url, home=home)] == sorted(["public", tenant_name])
    public = Registry(database_url, home=home)
    other = Registry(database_url, home=home, tenant=tenant_name)
    try:
        public.register(reg_archives["swap-1"])
        other.register(reg_archives["swap-2"])
        other.register(reg_archives["crash"])
        assert [(p.name, p.active_version) for p in public.list_packages()] == [("reg-swap", "1.0.0")]
        assert [(p.name, p.active_version) for p in other.list_packages()] == [
            ("reg-crash", "1.0.0"),
            ("reg-swap", "2.0.0"),
        ]
        with DefaultRunner(database_url, home=home) as runner:
            mine = runner.execute_sync("swap_flow")
            with pytest.raises(Exception, match="No workflow named 'crash_flow'"):
                runner.submit_sync("crash_flow")  # the other tenant's package is not offered here
        with DefaultRunner(database_url, home=home, tenant=tenant_name) as runner:
            theirs = runner.execute_sync("swap_flow")
            assert runner.catalog.resolve("crash_flow").source.version == "1.0.0"
            with pytest.raises(NotFoundError, match=f"No execution .* in tenant '{tenant_name}'"):
                runner.wait_sync(mine.execution_id)
        assert (mine.context.get("version"), theirs.context.get("version")) == ("1.0.0", "2.0.0")
        with DefaultRunner(database_url, home=home) as runner, pytest.raises(NotFoundError):
            runner.wait_sync(theirs.execution_id)
    finally:
        public.close()
        other.close()


def test_unknown_and_unsafe_tenant_names_are_refused(database_url: str, home: Path, tenant_name: str) -> None:
    with pytest.raises(TenantError, match=f"Tenant '{tenant_name}' does not exist .* tenants create {tenant_name}"):
        Registry(database_url, home=home, tenant=tenant_name).list_packages()
    with pytest.raises(TenantError, match=f"Tenant '{tenant_name}' does not exist"):
        DefaultRunner(database_url, home=home, tenant=tenant_name).start_sync()
    for bad in ("Acme", "a-b", "1abc", "x" * 64, "pg_catalog", "a;drop", ""):
        with pytest.raises(TenantError, match="is not allowed"):
            Registry(database_url, home=home, tenant=bad)
    create_tenant(database_url, home=home, name=tenant_name)
    with pytest.raises(TenantError, match="exists already"):
        create_tenant(database_url, home=home, name=tenant_name)
    assert [t.name for t in list_tenants(database_url, home=home)] == sorted(["public", tenant_name])
