"""Generated artifacts: collect them from every generator, write them atomically, check drift.

A generator is a function ``artifacts(root: Path) -> Generated`` that reads its sources
(e.g. ``alerts/slo.yaml``) below ``root`` and returns file contents; it never writes.
:func:`build` asks every generator first and writes only when all of them succeeded, so an
invalid spec leaves every committed file untouched.
"""

from __future__ import annotations

import importlib
import os
import shlex
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from limone_obs.errors import ArtifactError

#: ``module:function`` of every generator, in build order.
GENERATORS: tuple[str, ...] = (
    "limone_obs.exporter.catalogue:artifacts",
    "limone_obs.logging.schema:artifacts",
    "limone_obs.alerts.build:artifacts",
    "limone_obs.dashboards.build:artifacts",
    "limone_obs.stack.compose:artifacts",
)


def build_command(root: Path) -> str:
    """The ``limone-obs build`` command line that rebuilds ``root``, ready to copy: every
    option that changes what is built (only ``--root``), quoted for a POSIX shell."""
    words = ["limone-obs", "build"]
    if root != Path("."):
        words += ["--root", str(root)]
    return shlex.join(words)


@dataclass(frozen=True)
class Generated:
    """What one generator produces.

    ``files`` maps a path relative to the project root to its exact bytes. ``owned`` lists
    folders (relative) whose every file is generated: each gets a :data:`MANIFEST` of the
    files built there, so a file the generator no longer produces is known as ours, reported
    by ``--check`` and removed by a build, while a file nobody generated (the user's own,
    in a folder the kit writes to) is reported and never removed.
    """

    files: Mapping[str, bytes]
    owned: tuple[str, ...] = field(default=())


Generator = Callable[[Path], Generated]

#: In every owned folder: the files the last build wrote there, one per line.
MANIFEST = ".limone-obs-generated"
_MANIFEST_HEAD = (
    b"# Written by `limone-obs build`: the files it generated in this folder (a build\n"
    b"# removes only these when it stops generating one). Do not edit.\n"
)


def _load(spec: str) -> Generator:
    module_name, func_name = spec.split(":")
    func: Generator = getattr(importlib.import_module(module_name), func_name)
    return func


def collect(root: Path, generators: Iterable[str] = GENERATORS) -> Generated:
    """Run every generator against ``root`` and merge their output; raise if two claim a path."""
    files: dict[str, bytes] = {}
    owned: list[str] = []
    for spec in generators:
        out = _load(spec)(root)
        clash = files.keys() & out.files.keys()
        if clash:
            raise ArtifactError(f"generator {spec} writes {sorted(clash)} already written")
        files.update(out.files)
        owned.extend(out.owned)
    for folder in owned:
        inside = sorted(rel[len(folder) + 1 :] for rel in files if rel.startswith(folder + "/"))
        listing = "".join(f"{name}\n" for name in inside).encode()
        files[f"{folder}/{MANIFEST}"] = _MANIFEST_HEAD + listing
    return Generated(files=files, owned=tuple(owned))


def _built_before(root: Path, folder: str) -> set[str]:
    """Paths (relative to the root) the last build listed in ``folder``'s manifest."""
    path = root / folder / MANIFEST
    if not path.is_file():
        return set()
    names = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return {f"{folder}/{name}" for name in names if name and not name.startswith("#")}


def _extras(root: Path, gen: Generated) -> tuple[list[str], list[str]]:
    """Files in the owned folders that this build does not write: (built by an earlier
    build, so stale and ours to remove; written by someone else, so left alone)."""
    stale: list[str] = []
    foreign: list[str] = []
    for folder in gen.owned:
        base = root / folder
        if not base.is_dir():
            continue
        before = _built_before(root, folder)
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(root).as_posix()
            if path.is_file() and rel not in gen.files:
                (stale if rel in before else foreign).append(rel)
    return stale, foreign


#: How a ``build --check`` line about a file of someone else's starts.
FOREIGN = "not written by limone-obs: "


def _foreign_line(rel: str) -> str:
    return f"{FOREIGN}{rel} (left as is; build writes this folder: move it out)"


def _remove_emptied(root: Path, rel: str, owned: Iterable[str]) -> None:
    """Remove the folders ``rel``'s removal left empty, up to its owned folder (kept):
    a service renamed leaves no empty ``alerts/runbooks/<old service>/`` behind."""
    top = next((folder for folder in owned if rel.startswith(f"{folder}/")), None)
    if top is None:
        return
    folder = (root / rel).parent
    while folder != root / top and folder.is_relative_to(root / top):
        try:
            folder.rmdir()  # only when empty: a file of the user's keeps it
        except OSError:
            return
        folder = folder.parent


def diff(root: Path, gen: Generated) -> list[str]:
    """Return one line per artifact that differs from what is on disk (empty when fresh)."""
    problems = []
    for rel, content in sorted(gen.files.items()):
        path = root / rel
        if not path.is_file():
            problems.append(f"missing: {rel}")
        elif path.read_bytes() != content:
            problems.append(f"stale: {rel}")
    stale, foreign = _extras(root, gen)
    problems.extend(f"not generated any more: {rel}" for rel in stale)
    problems.extend(_foreign_line(rel) for rel in foreign)
    return problems


def write_atomic(path: Path, content: bytes) -> None:
    """Replace ``path`` with ``content`` in one rename, so no reader sees half a file."""
    tmp = _stage(path, content)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _stage(path: Path, content: bytes) -> Path:
    """``content`` in a new temporary file beside ``path`` (mode 0644), to rename onto it;
    nothing left behind when it cannot be written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(tmp, 0o644)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _set_aside(root: Path, stale: list[str]) -> list[tuple[str, Path]]:
    """Rename each ``stale`` file (relative to ``root``) to a hidden name beside it, to
    remove once the build is written or put back if it fails; an ArtifactError naming
    one that cannot be moved (an immutable file), the others put back: nothing changed."""
    moved: list[tuple[str, Path]] = []
    for rel in stale:
        path = root / rel
        aside = path.with_name(f".{path.name}.removed")
        try:
            os.replace(path, aside)
        except OSError as exc:
            for done, back in moved:
                os.replace(back, root / done)
            raise ArtifactError(
                f"cannot remove {path}, which this build no longer makes ({exc}): "
                "nothing was changed; remove it by hand, or make it writable"
            ) from None
        moved.append((rel, aside))
    return moved


def _write_all(root: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` (relative path -> bytes) below ``root`` all or none: each is staged
    in a temporary file beside it first, then the stages replace their paths; a rename
    failing midway (an immutable file) puts back the files replaced before it. A path
    that is no file (a folder), or a folder that takes no file, is an ArtifactError
    naming it before any path changes (a build half written mixes two specs' artifacts);
    folders made for the files are removed again when nothing is written."""
    for rel in files:
        path = root / rel
        if path.exists() and not path.is_file():
            raise ArtifactError(
                f"cannot write {path}: it is no file (a folder?); move it away and build again"
            )
        for folder in path.parents:
            if folder.is_relative_to(root) and folder.exists() and not folder.is_dir():
                raise ArtifactError(
                    f"cannot write {path}: {folder} is a file where a folder belongs; move "
                    "it away and build again"
                )
    made = _missing_folders(root, files)
    staged: list[tuple[str, Path]] = []
    try:
        for rel, content in files.items():
            staged.append((rel, _stage(root / rel, content)))
    except BaseException as exc:
        for _rel, tmp_path in staged:
            tmp_path.unlink(missing_ok=True)
        _remove_folders(made)
        if isinstance(exc, OSError):
            raise ArtifactError(
                f"cannot write the artifacts below {root} ({exc}): nothing was changed"
            ) from None
        raise
    replaced = False
    try:
        _replace_all(root, staged)
        replaced = True
    finally:  # a rename that failed midway leaves no staged file, nor a folder made, behind
        for _rel, tmp_path in staged:
            tmp_path.unlink(missing_ok=True)
        if not replaced:
            _remove_folders(made)


def _replace_all(root: Path, staged: list[tuple[str, Path]]) -> None:
    """Rename each staged file onto its path; when one fails, put the replaced files
    back (their bytes were read first) and raise an ArtifactError saying what changed."""
    originals = {rel: _read_or_none(root / rel) for rel, _tmp in staged}
    replaced: list[str] = []
    for rel, tmp_path in staged:
        try:
            os.replace(tmp_path, root / rel)
        except OSError as exc:
            left = _put_back(root, replaced, originals)
            outcome = (
                "nothing was changed"
                if not left
                else f"these could not be put back and are this build's: {', '.join(left)}"
            )
            raise ArtifactError(f"cannot replace {root / rel} ({exc}): {outcome}") from None
        replaced.append(rel)


def _read_or_none(path: Path) -> tuple[bytes, int] | None:
    """``path``'s bytes and permission bits, None when it is no file."""
    return (path.read_bytes(), path.stat().st_mode & 0o7777) if path.is_file() else None


def _put_back(
    root: Path, replaced: list[str], originals: dict[str, tuple[bytes, int] | None]
) -> list[str]:
    """Restore each of ``replaced`` to its original bytes and mode (remove it when it was
    new); return those that could not be."""
    left = []
    for rel in replaced:
        try:
            original = originals[rel]
            if original is None:
                (root / rel).unlink()
            else:
                write_atomic(root / rel, original[0])
                os.chmod(root / rel, original[1])
        except OSError:
            left.append(rel)
    return left


def _missing_folders(root: Path, files: Iterable[str]) -> list[Path]:
    """The folders that writing ``files`` below ``root`` would make, deepest first."""
    missing = {
        folder
        for rel in files
        for folder in (root / rel).parents
        if folder.is_relative_to(root) and not folder.exists()
    }
    return sorted(missing, key=lambda folder: len(folder.parts), reverse=True)


def _remove_folders(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) that are still empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            continue  # not made after all, or not empty: keep it


def build(
    root: Path,
    generators: Iterable[str] = GENERATORS,
    *,
    left: list[str] | None = None,
    removed: list[str] | None = None,
) -> list[str]:
    """Regenerate every artifact below ``root``; return the paths that changed (written,
    then removed).

    All generators run before anything is written: if one raises, no file changes; the
    files are then written, and the stale ones removed, all or none (:func:`_set_aside`,
    :func:`_write_all`). A file
    of an owned folder that an earlier build wrote and this one does not is removed (and
    its path appended to ``removed``, if given); one that no build wrote is left, and a
    line about it is appended to ``left`` (if given).
    """
    gen = collect(root, generators)
    stale, foreign = _extras(root, gen)
    changed = [
        rel
        for rel, content in sorted(gen.files.items())
        if not (root / rel).is_file() or (root / rel).read_bytes() != content
    ]
    set_aside = _set_aside(root, stale)
    try:
        _write_all(root, {rel: gen.files[rel] for rel in changed})
    except BaseException:
        for rel, aside in set_aside:
            os.replace(aside, root / rel)  # back where it was: nothing changed
        raise
    for rel, aside in set_aside:
        aside.unlink(missing_ok=True)
        changed.append(rel)
        _remove_emptied(root, rel, gen.owned)
    if removed is not None:
        removed.extend(stale)
    if left is not None:
        left.extend(_foreign_line(rel) for rel in foreign)
    return changed
