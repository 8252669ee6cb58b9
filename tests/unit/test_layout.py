"""The rooms of roles/ and who may import whom: common/ below every role, each role on one floor, site and
inventory above them. A role that needs another's value gets it in its config from roles/site/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROLES = Path(__file__).resolve().parents[2] / "roles"
SHARED = "common"
ABOVE_ROLES = {"site", "inventory"}  # the rooms of roles/ that build the site
ROLE_PACKAGES = sorted(
    p.name for p in ROLES.iterdir() if (p / "__init__.py").exists() and p.name not in {SHARED, *ABOVE_ROLES}
)


def imported_rooms(path: Path) -> set[str]:
    """The rooms of roles/ that a module imports from, at any depth (imports inside functions count too)."""
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        rooms |= {name.split(".")[1] for name in names if name.startswith("roles.") and name.count(".") >= 1}
    return rooms


def modules(room: str) -> list[Path]:
    return sorted((ROLES / room).rglob("*.py"))


def test_the_rooms_are_what_this_test_expects():
    assert {"base", "gateway", "model_server", "monitor", "mtls", "pki"} <= set(ROLE_PACKAGES)
    rooms = {p.stem for p in ROLES.glob("*.py")} | {p.name for p in ROLES.iterdir() if (p / "__init__.py").exists()}
    assert rooms == {"__init__", SHARED, *ROLE_PACKAGES, *ABOVE_ROLES}


@pytest.mark.parametrize("role", ROLE_PACKAGES)
def test_a_role_imports_only_itself_and_the_shared_helpers(role):
    wrong = {
        f"{path.relative_to(ROLES)} imports roles.{room}"
        for path in modules(role)
        for room in imported_rooms(path) - {role, SHARED}
    }
    assert not wrong, "roles meet only through roles/site/: " + "; ".join(sorted(wrong))


def test_the_shared_helpers_import_no_role():
    wrong = {
        f"{path.relative_to(ROLES)} imports roles.{room}"
        for path in modules(SHARED)
        for room in imported_rooms(path) - {SHARED}
    }
    assert not wrong, "roles/common/ sits below every role: " + "; ".join(sorted(wrong))


def test_the_walk_sees_a_role_to_role_import(tmp_path):
    """The check above cannot pass by seeing nothing: it finds an import, also one inside a function."""
    module = tmp_path / "deploy.py"
    module.write_text("from roles.common.files import host_files\n\ndef f():\n    from roles.pki.config import X\n")
    assert imported_rooms(module) == {"common", "pki"}
