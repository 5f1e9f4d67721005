"""Build hook, with everything else in pyproject.toml: the wheel carries the SQL.

sql/ at the repository root stays the source (one object per file, what sqlfluff, the Supabase
CLI generator and the tests read). A build copies it into the package as `proxy/sql/`, where
`proxy.local.migrate.SQL_DIR` finds it with importlib.resources once installed. An editable install
copies nothing: there SQL_DIR is the checkout's own sql/.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SOURCE = Path(__file__).resolve().parent / "sql"


class build_py_with_sql(build_py):
    """build_py, then sql/**/*.sql into <build>/proxy/sql/."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        files = sorted(SOURCE.rglob("*.sql"))
        if not files:
            raise SystemExit(f"no SQL under {SOURCE}: the wheel would migrate nothing")
        target = Path(self.build_lib) / "proxy" / "sql"
        shutil.rmtree(target, ignore_errors=True)  # a file removed or renamed since the last build
        for path in files:
            out = target / path.relative_to(SOURCE)
            self.mkpath(str(out.parent))
            self.copy_file(str(path), str(out))


setup(cmdclass={"build_py": build_py_with_sql})
