"""The demo's SQLite database: projects and languages, seeded on first use.

Every gunicorn worker opens the same file; seeding uses ``INSERT OR IGNORE`` inside one
transaction, so workers starting together neither fail nor duplicate rows.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS languages (
    name TEXT PRIMARY KEY, extension TEXT NOT NULL, runtime TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS projects (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, language TEXT NOT NULL REFERENCES languages(name)
);
"""
LANGUAGES = (
    ("python", ".py", "CPython 3.12"),
    ("javascript", ".js", "Node.js 22"),
    ("rust", ".rs", "rustc 1.83"),
    ("go", ".go", "Go 1.23"),
    ("html", ".html", "browser"),
)
#: Seeded projects ``(id, name, language)``: ids 1..20 exist after seeding.
PROJECTS = tuple((i, f"project-{i}", LANGUAGES[i % len(LANGUAGES)][0]) for i in range(1, 21))


def connect(path: Path) -> sqlite3.Connection:
    """Open the database at ``path`` (rows as dicts via ``sqlite3.Row``)."""
    conn = sqlite3.connect(path, timeout=10, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    return conn


def seed(path: Path) -> None:
    """Create the tables and the seed rows if missing (safe to run from many processes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with connect(path) as conn:
        conn.executescript(_SCHEMA)
        conn.executemany("INSERT OR IGNORE INTO languages VALUES (?, ?, ?)", LANGUAGES)
        conn.executemany("INSERT OR IGNORE INTO projects VALUES (?, ?, ?)", PROJECTS)
    conn.close()


def list_projects(conn: sqlite3.Connection, limit: int = 50) -> list[dict[str, Any]]:
    """The first ``limit`` projects by id."""
    rows = conn.execute("SELECT id, name, language FROM projects ORDER BY id LIMIT ?", (limit,))
    return [dict(row) for row in rows]


def list_project_ids(conn: sqlite3.Connection, limit: int = 50) -> list[int]:
    """The ids of the first ``limit`` projects (the first query of an N+1 loop)."""
    rows = conn.execute("SELECT id FROM projects ORDER BY id LIMIT ?", (limit,))
    return [int(row["id"]) for row in rows]


def get_project(conn: sqlite3.Connection, project_id: int) -> dict[str, Any] | None:
    """One project, or None."""
    row = conn.execute(
        "SELECT id, name, language FROM projects WHERE id = ?", (project_id,)
    ).fetchone()
    return dict(row) if row is not None else None


def create_project(conn: sqlite3.Connection, name: str, language: str) -> dict[str, Any]:
    """Insert a project and return it (``language`` must exist; the caller checks)."""
    with conn:
        cur = conn.execute("INSERT INTO projects (name, language) VALUES (?, ?)", (name, language))
    return {"id": cur.lastrowid, "name": name, "language": language}


def get_language(conn: sqlite3.Connection, name: str) -> dict[str, Any] | None:
    """One language's settings, or None."""
    row = conn.execute(
        "SELECT name, extension, runtime FROM languages WHERE name = ?", (name,)
    ).fetchone()
    return dict(row) if row is not None else None
