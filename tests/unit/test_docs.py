"""The docs' generated tables and whole pages are made from their data (tools/docs.py, make docs) and must not drift."""

import dataclasses
import re

import pytest

from roles.inventory.schema import HOST_KEYS, SETTINGS
from tools import docs

README = docs.README.read_text()
HOMES = docs.homes()  # each section's one document; none in two, none missing


@pytest.mark.parametrize("section", list(docs.sections()))
def test_each_generated_table_is_what_make_docs_writes(section):
    home = HOMES[section]
    assert docs.section_in(home.read_text(), section) == docs.sections()[section], (
        f"{home.name}'s table {section!r} differs from the data it is made from: run make docs"
    )


@pytest.mark.parametrize("page", list(docs.PAGES))
def test_reference_page_is_what_make_docs_writes(page):
    assert (docs.REPO / page).is_file() and (docs.REPO / page).read_text() == docs.PAGES[page](), (
        f"{page} differs from the data it is made from: run make docs"
    )


@pytest.mark.parametrize("prefix, cls", SETTINGS.items())
def test_every_setting_has_a_one_line_doc(prefix, cls):
    for field in dataclasses.fields(cls):
        doc = field.metadata.get("doc", "")
        assert doc.strip() and "\n" not in doc, f"{prefix}_{field.name} needs a one-line doc in setting(...)"


@pytest.mark.parametrize("prefix, cls", SETTINGS.items())
def test_each_table_lists_every_key_of_its_class(prefix, cls):
    table = docs.settings_table(prefix)
    rows = [line.split(" | ")[0].removeprefix("| ") for line in table.splitlines() if line.startswith("| `")]
    assert rows == [f"`{prefix}_{field.name}`" for field in dataclasses.fields(cls)]


def test_host_table_lists_every_host_key():
    table = docs.host_table()
    assert all(f"| `{key}` |" in table for key in HOST_KEYS)


def test_site_wide_keys_are_marked():
    assert "(site-wide)" in docs.settings_table("base")  # base_dns_domain and the aliases
    assert "Every `monitor_*` key is site-wide" in docs.settings_table("monitor")
    assert "(site-wide)" not in docs.settings_table("model_server")


@pytest.mark.parametrize(
    "value, written",
    [("", '""'), ((), "[]"), ({}, "{}"), (("a", "b"), '["a", "b"]'), ({"llm": "backend"}, '{"llm": "backend"}'),
     (True, "True"), (4.0, "4.0"), (8443, "8443")],
)  # fmt: skip
def test_defaults_are_written_as_in_a_python_inventory(value, written):
    assert docs.literal(value) == written


def test_the_accepts_column_is_what_the_value_type_says():
    table = docs.settings_table("mtls")
    assert "| `mtls_port` | `8443` | a TCP port, 1 to 65535 |" in table
    for field in dataclasses.fields(SETTINGS["mtls"]):
        assert field.metadata["check"].describe in table


def test_check_names_the_stale_sections():
    roles = HOMES["base"].read_text()
    current = docs.update(roles)
    stale = current.replace("`base_swappiness` | `10`", "`base_swappiness` | `20`")
    assert docs.out_of_date(current) == []
    assert docs.out_of_date(stale) == ["base"]
    assert docs.update(stale) == current


def test_a_section_without_its_markers_is_found_missing(tmp_path, monkeypatch):
    home = HOMES["controls"]
    copy = tmp_path / home.name
    copy.write_text(home.read_text().replace("<!-- settings:controls -->", ""))
    monkeypatch.setattr(docs, "DOCUMENTS", tuple(copy if path == home else path for path in docs.DOCUMENTS))
    with pytest.raises(SystemExit, match="settings:controls"):
        docs.homes()


def relative_links(path):
    """The targets of ``path``'s Markdown links to files of this repository (not the web, not an anchor)."""
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
        if not re.match(r"[a-z]+:", target) and not target.startswith("#"):
            yield target.split("#")[0]


@pytest.mark.parametrize(
    "document", [docs.README, docs.REPO / "BENCHMARKS.md", *sorted((docs.REPO / "docs").glob("*.md"))],
    ids=lambda path: path.name,
)  # fmt: skip
def test_every_link_between_the_documents_leads_to_a_file(document):
    broken = [target for target in relative_links(document) if not (document.parent / target).exists()]
    assert not broken, f"{document.name} links to files that are not there: {broken}"


def test_readme_is_a_first_screen_and_a_map_to_every_page():
    assert len(README.splitlines()) <= 130, "README is a first screen and a map: the rest belongs under docs/"
    linked = set(relative_links(docs.README))
    pages = {f"docs/{path.name}" for path in (docs.REPO / "docs").glob("*.md")} | {"BENCHMARKS.md"}
    assert pages <= linked, f"README links to no {sorted(pages - linked)}"
    assert "make demo" in README and "make test" in README


def test_every_control_is_listed_once_under_a_stable_id():
    ids = [control.id for control in docs.controls()]
    assert len(ids) == len(set(ids)), "two controls share an ID"
    assert len(ids) >= 50, "the compliance suite's controls were not found"
    assert all(re.fullmatch(r"(BASE|PKI|LLM|GW|NET|LB|MON|FW)-\d\d", i) for i in ids), ids


def test_the_types_table_names_every_value_type_a_key_uses_with_what_it_accepts():
    table = docs.types_table()
    rows = {line.split(" | ")[0].removeprefix("| ").strip("`"): line for line in table.splitlines()[2:]}
    assert {"ModelSource", "HttpsUrl", "AbsPath", "LanIPv4", "Text", "Port", "Version"} <= rows.keys()
    # Each row says what the type accepts in words (its docstring), not a dataclass's generated signature.
    assert not [name for name, line in rows.items() if f"| {name}(" in line], "a value type lacks its docstring"
