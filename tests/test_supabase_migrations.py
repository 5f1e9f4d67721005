"""`nimbus supabase-migrations`: supabase/migrations is generated from sql/ and kept current."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from proxy.local.cli import main
from proxy.local.supabase_migrations import (
    GenerationError,
    generate,
    plan,
    repeatables_text,
    sections,
)
from tests.conftest import ROOT

CHECKED_IN = ROOT / "supabase" / "migrations"


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the repository's sql/ (without sql/local) and an empty output directory."""
    sql_dir = tmp_path / "sql"
    shutil.copytree(ROOT / "sql", sql_dir, ignore=shutil.ignore_patterns("local"))
    return sql_dir, tmp_path / "supabase" / "migrations"


def _names(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob("*.sql"))


def test_checked_in_directory_is_current() -> None:
    """supabase/migrations matches sql/: regenerate with `nimbus supabase-migrations`."""
    result = CliRunner().invoke(
        main, ["supabase-migrations", "--check", "--sql-dir", str(ROOT / "sql")]
    )
    assert result.exit_code == 0, result.output


def test_versions_are_unique_and_repeatables_come_last() -> None:
    """Every version is used once, and the newest generated repeatables file sorts last."""
    names = _names(CHECKED_IN)
    versions = [n.split("_", 1)[0] for n in names]
    assert len(versions) == len(set(versions))
    assert re.fullmatch(r"\d+_nimbus_repeatables\.sql", names[-1])
    assert "sql/local" not in (CHECKED_IN / names[-1]).read_text()


def test_migrations_are_copied_byte_for_byte(tmp_path: Path) -> None:
    """Each sql/migrations file is in the output under its name; the repeatables hold every
    function, trigger and policy file in `nimbus migrate`'s order."""
    sql_dir, out = _tree(tmp_path)
    assert not generate(sql_dir, out, check=True, echo=lambda _l: None)
    assert generate(sql_dir, out, echo=lambda _l: None) is False
    for path in (sql_dir / "migrations").glob("*.sql"):
        assert (out / path.name).read_bytes() == path.read_bytes()
    text = (out / _names(out)[-1]).read_text()
    markers = re.findall(r"^-- sql/(\S+)$", text, flags=re.M)
    assert markers[0].startswith("functions/")
    assert markers[-1].startswith("policies/")
    assert len(markers) == sum(
        len(list((sql_dir / kind).rglob("*.sql"))) for kind in ("functions", "triggers", "policies")
    )
    assert generate(sql_dir, out, echo=lambda _l: None)  # idempotent: nothing left to write


def test_changed_function_gets_a_new_later_version(tmp_path: Path) -> None:
    """Editing a function file adds a repeatables file after every other, holding that file
    alone; the old one stays."""
    sql_dir, out = _tree(tmp_path)
    generate(sql_dir, out, echo=lambda _l: None)
    before = _names(out)
    target = next((sql_dir / "functions").rglob("*.sql"))
    target.write_text(target.read_text() + "\n-- changed\n")
    lines: list[str] = []
    assert not generate(sql_dir, out, check=True, echo=lines.append)
    assert any("missing" in line for line in lines)
    generate(sql_dir, out, echo=lambda _l: None)
    after = _names(out)
    assert set(before) < set(after) and len(after) == len(before) + 1
    assert int(after[-1].split("_")[0]) == int(before[-1].split("_")[0]) + 1
    assert "-- changed" in (out / after[-1]).read_text()
    changed = target.relative_to(sql_dir).as_posix()
    assert (out / after[-1]).read_text() == repeatables_text(sql_dir, {changed})
    assert list(sections((out / after[-1]).read_text())) == [changed]
    assert generate(sql_dir, out, echo=lambda _l: None)  # up to date


def test_changed_files_are_compared_with_every_generated_file(tmp_path: Path) -> None:
    """A file changed back to what an older generated file holds is a change again; one
    changed in two steps ends as its last text; untouched files are never repeated."""
    sql_dir, out = _tree(tmp_path)
    generate(sql_dir, out, echo=lambda _l: None)
    first, second = sorted((sql_dir / "functions").rglob("*.sql"))[:2]
    original = first.read_text()
    first.write_text(original + "\n-- one\n")
    second.write_text(second.read_text() + "\n-- two\n")
    generate(sql_dir, out, echo=lambda _l: None)
    first.write_text(original)
    generate(sql_dir, out, echo=lambda _l: None)
    names = _names(out)
    held = [list(sections((out / name).read_text())) for name in names[-2:]]
    rel = first.relative_to(sql_dir).as_posix()
    assert held == [sorted([rel, second.relative_to(sql_dir).as_posix()]), [rel]]
    assert sections((out / names[-1]).read_text())[rel] == original
    assert generate(sql_dir, out, echo=lambda _l: None)


def test_a_marker_line_in_a_repeatable_file_is_refused(tmp_path: Path) -> None:
    """A line that reads as a generated file's section marker would split its file's section:
    the generator names the file instead."""
    sql_dir, out = _tree(tmp_path)
    target = next((sql_dir / "policies").rglob("*.sql"))
    target.write_text(target.read_text() + "-- sql/functions/elsewhere.sql\n")
    with pytest.raises(GenerationError, match=target.name):
        plan(sql_dir, out)


def test_new_migration_is_followed_by_repeatables(tmp_path: Path) -> None:
    """A migration added after the last generation gets a repeatables file after it (its
    changes may drop what the functions, triggers and policies created)."""
    sql_dir, out = _tree(tmp_path)
    generate(sql_dir, out, echo=lambda _l: None)
    last = int(_names(out)[-1].split("_")[0])
    later = f"{last + 99}_probe.sql"
    (sql_dir / "migrations" / later).write_text("select 1;\n")
    generate(sql_dir, out, echo=lambda _l: None)
    assert _names(out)[-2:] == [later, f"{last + 100}_nimbus_repeatables.sql"]
    assert (out / _names(out)[-1]).read_text() == repeatables_text(sql_dir)  # every file


def test_migration_older_than_the_history_is_refused(tmp_path: Path) -> None:
    """A new migration versioned before files already generated would need --include-all."""
    sql_dir, out = _tree(tmp_path)
    generate(sql_dir, out, echo=lambda _l: None)
    (sql_dir / "migrations" / "20000101000000_late.sql").write_text("select 1;\n")
    with pytest.raises(GenerationError, match=r"20000101000000_late\.sql: version before"):
        plan(sql_dir, out)


def test_duplicate_version_is_refused(tmp_path: Path) -> None:
    """Two sql/migrations files with one version: the error names both."""
    sql_dir, out = _tree(tmp_path)
    first = sorted((sql_dir / "migrations").glob("*.sql"))[0]
    twin = first.with_name(first.name.split("_", 1)[0] + "_twin.sql")
    twin.write_text("select 1;\n")
    result = CliRunner().invoke(
        main, ["supabase-migrations", "--sql-dir", str(sql_dir), "--out", str(out)]
    )
    assert result.exit_code == 1
    assert first.name in result.output and twin.name in result.output
    assert not out.exists()


def test_copy_without_source_is_refused(tmp_path: Path) -> None:
    """Migrations are forward-only: a generated copy whose source disappeared is an error."""
    sql_dir, out = _tree(tmp_path)
    generate(sql_dir, out, echo=lambda _l: None)
    first = sorted((sql_dir / "migrations").glob("*.sql"))[0]
    first.unlink()
    with pytest.raises(GenerationError, match="no source in sql/migrations"):
        plan(sql_dir, out)
