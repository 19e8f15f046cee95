"""The security map (``docs/security.md``) stays true.

- every ``tests/...py::name`` it cites exists and defines that test (read with ``ast``: a
  top-level ``def``/``async def test_*``, or ``::TestClass::test_*`` for a method);
- every requirement row has an id, a status, and the proof that status needs (a test for
  ``Met`` and ``Partial``, ``Gap —`` or ``N/A —`` with the reason otherwise);
- every L1 and L2 requirement of ASVS 5.0 V6, V7, V9 and V10.4 has its row, and each of those
  chapters names at least one test;
- the defaults the map quotes are the configuration's, and the claims no behavioural test pins
  (no seeded account, no password expiry, no password hints) hold.

Fast and database-free: the map and the cited test files are only read, and nothing connects.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAP = ROOT / "docs" / "security.md"

#: ``tests/a/b.py::test_x``, ``tests/a/b.py::TestX::test_y``; a ``[param]`` suffix is ignored.
TEST_REF = re.compile(
    r"(?P<path>tests/[\w./-]+?\.py)::(?P<first>[A-Za-z_]\w*)(?:::(?P<second>[A-Za-z_]\w*))?"
)
ROW_ID = re.compile(r"^(?P<chapter>\d+)\.(?P<section>\d+)\.(?P<number>\d+)$")
STATUSES = {"Met", "Partial", "Gap", "N/A"}
CHAPTERS = {"6", "7", "9", "10"}
SETTINGS_HEADING = "## Settings this map quotes"

#: ASVS 5.0.0 (OWASP/ASVS, 5.0/docs_en CSV): the level 1 and 2 requirements in scope.
EXPECTED_IDS = frozenset(
    [f"6.1.{n}" for n in range(1, 4)]
    + [f"6.2.{n}" for n in range(1, 13)]
    + [f"6.3.{n}" for n in range(1, 5)]
    + [f"6.4.{n}" for n in range(1, 5)]
    + [f"6.5.{n}" for n in range(1, 6)]
    + [f"6.6.{n}" for n in range(1, 4)]
    + [f"6.8.{n}" for n in range(1, 5)]
    + [f"7.1.{n}" for n in range(1, 4)]
    + [f"7.2.{n}" for n in range(1, 5)]
    + [f"7.3.{n}" for n in range(1, 3)]
    + [f"7.4.{n}" for n in range(1, 6)]
    + [f"7.5.{n}" for n in range(1, 3)]
    + [f"7.6.{n}" for n in range(1, 3)]
    + [f"9.1.{n}" for n in range(1, 4)]
    + [f"9.2.{n}" for n in range(1, 5)]
    + [f"10.4.{n}" for n in range(1, 12)]
)


@dataclass(frozen=True)
class Citation:
    path: str
    name: str
    method: str | None

    def __str__(self) -> str:
        return f"{self.path}::{self.name}" + (f"::{self.method}" if self.method else "")


@dataclass(frozen=True)
class Row:
    id: str
    status: str
    text: str
    refs: tuple[Citation, ...]


def table_cells(line: str) -> list[str] | None:
    stripped = line.strip()
    if not (stripped.startswith("|") and stripped.endswith("|")):
        return None
    return [cell.strip() for cell in stripped[1:-1].split("|")]


def refs_in(text: str) -> tuple[Citation, ...]:
    return tuple(Citation(m["path"], m["first"], m["second"]) for m in TEST_REF.finditer(text))


@cache
def map_text() -> str:
    return MAP.read_text(encoding="utf-8")


@cache
def rows() -> tuple[Row, ...]:
    found = []
    for line in map_text().splitlines():
        cells = table_cells(line)
        if cells and ROW_ID.match(cells[0]):
            status = next((cell for cell in cells[1:] if cell in STATUSES), "")
            found.append(Row(cells[0], status, line, refs_in(line)))
    return tuple(found)


@cache
def defined_tests(path: str) -> frozenset[str]:
    """``name`` for each top-level test function, ``Class::method`` for each test method."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"), filename=path)
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, functions) and node.name.startswith("test"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names.update(
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, functions) and item.name.startswith("test")
            )
    return frozenset(names)


def test_the_map_has_requirement_rows():
    assert MAP.is_file(), "docs/security.md is missing"
    assert len(rows()) >= len(EXPECTED_IDS)


def test_every_cited_test_exists():
    refs = refs_in(map_text())
    assert refs, "the map cites no test"
    missing = []
    for ref in sorted(set(refs), key=str):
        if not (ROOT / ref.path).is_file():
            missing.append(f"{ref} (no such file)")
            continue
        wanted = f"{ref.name}::{ref.method}" if ref.method else ref.name
        if wanted not in defined_tests(ref.path):
            missing.append(str(ref))
    assert not missing, "docs/security.md cites tests that do not exist:\n" + "\n".join(missing)


def test_every_row_has_an_id_a_status_and_its_proof():
    problems = []
    for row in rows():
        if not row.status:
            problems.append(f"{row.id}: no status ({', '.join(sorted(STATUSES))})")
        elif row.status == "Met" and not row.refs:
            problems.append(f"{row.id}: Met, but no test is cited")
        elif row.status == "Partial" and not (row.refs and "Gap —" in row.text):
            problems.append(f"{row.id}: Partial needs a cited test and a 'Gap —' note")
        elif row.status == "Gap" and "Gap —" not in row.text:
            problems.append(f"{row.id}: Gap needs a 'Gap — what is missing' note")
        elif row.status == "N/A" and "N/A —" not in row.text:
            problems.append(f"{row.id}: N/A needs an 'N/A — why' note")
    assert not problems, "\n".join(problems)


def test_each_requirement_in_scope_has_exactly_one_row():
    ids = [row.id for row in rows()]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"rows listed twice: {duplicates}"
    assert not EXPECTED_IDS - set(ids), f"missing rows: {sorted(EXPECTED_IDS - set(ids))}"
    assert not set(ids) - EXPECTED_IDS, f"rows out of scope: {sorted(set(ids) - EXPECTED_IDS)}"


def test_the_summary_counts_the_rows():
    summary = re.search(
        r"Summary: (\d+) requirements mapped: (\d+) Met, (\d+) Partial, (\d+) Gap, (\d+) N/A\.",
        map_text(),
    )
    assert summary, "the preamble's 'Summary: ...' line is missing or reworded"
    statuses = [row.status for row in rows()]
    counted = [len(statuses)] + [statuses.count(s) for s in ("Met", "Partial", "Gap", "N/A")]
    assert [int(n) for n in summary.groups()] == counted


def test_each_chapter_names_at_least_one_test():
    covered = {row.id.split(".")[0] for row in rows() if row.refs}
    assert covered >= CHAPTERS, f"chapters without a cited test: {sorted(CHAPTERS - covered)}"


@cache
def quoted_settings() -> dict[str, str]:
    """``| `NAME` | `value` | ... |`` rows of the settings section."""
    section = map_text().split(SETTINGS_HEADING, 1)[1].split("\n## ", 1)[0]
    settings = {}
    for line in section.splitlines():
        cells = table_cells(line)
        if cells and len(cells) >= 2 and re.fullmatch(r"`[A-Z][A-Z0-9_]+`", cells[0]):
            settings[cells[0].strip("`")] = cells[1].strip("`")
    return settings


def test_documented_defaults_match_the_configuration():
    from auth_microservice_app.config import load_config

    config = load_config("production", environ={})
    settings = quoted_settings()
    assert len(settings) >= 10
    wrong = {
        name: (documented, getattr(config, name, "<no such setting>"))
        for name, documented in settings.items()
        if str(getattr(config, name, "<no such setting>")) != documented
    }
    assert not wrong, f"documented vs configured: {wrong}"


def test_no_migration_seeds_an_account():
    """6.3.2: no default account exists because nothing ever inserts a user but a sign-up."""
    seed = re.compile(
        r"INSERT\s+INTO\s+\"?users\b|(?<![\w.])(?:sa\.)?table\(\s*['\"]users['\"]", re.IGNORECASE
    )
    migrations = sorted((ROOT / "migrations" / "versions").glob("*.py"))
    assert migrations
    seeding = [path.name for path in migrations if seed.search(path.read_text(encoding="utf-8"))]
    assert not seeding


def test_passwords_never_expire():
    """6.2.10: nothing records a password's age, and no setting rotates passwords."""
    from auth_microservice_app.config import load_config
    from auth_microservice_app.models import User

    columns = set(User.__table__.columns.keys())
    assert {name for name in columns if "password" in name} == {"password_hash"}
    settings = vars(load_config("production", environ={}))
    assert not [name for name in settings if re.search(r"PASSWORD.*(AGE|EXPIR|ROTAT)", name)]


def test_no_password_hints_or_security_questions():
    """6.4.2: neither the account nor the sign-up body has a hint or a secret question."""
    from auth_microservice_app.auth.schemas import RegisterSchema, UpdateMeSchema
    from auth_microservice_app.models import User

    names = set(User.__table__.columns.keys())
    names |= set(RegisterSchema().fields) | set(UpdateMeSchema().fields)
    assert not [name for name in names if re.search(r"hint|question|answer", name)]
