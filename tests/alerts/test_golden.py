"""Golden files: the committed alerts artifacts are exactly what the generator makes."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from limone_obs import artifacts
from limone_obs.alerts import alerting, build
from limone_obs.alerts.render import HEADER
from limone_obs.alerts.spec import load_spec
from limone_obs.cli import main
from tests.support import ROOT, in_ci

ALERTS_ONLY = ("limone_obs.alerts.build:artifacts",)
GENERATED = build.artifacts(ROOT)


@pytest.mark.parametrize("rel", sorted(GENERATED.files))
def test_committed_file_equals_a_fresh_build(rel: str) -> None:
    """Each committed artifact is byte-identical to a fresh generation from the spec."""
    path = ROOT / rel
    on_disk = path.read_bytes() if path.is_file() else b"<missing>"
    assert GENERATED.files[rel] == on_disk


def test_no_stale_files_in_owned_folders() -> None:
    """Every file in alerts/rules, tests/generated, runbooks, kubernetes, mimir is generated."""
    assert [] == artifacts.diff(ROOT, artifacts.collect(ROOT, ALERTS_ONLY))


def test_generation_is_deterministic() -> None:
    """Two generations from the same spec give the same bytes."""
    assert build.artifacts(ROOT).files == GENERATED.files


def test_yaml_artifacts_start_with_the_header() -> None:
    """Generated YAML says where it comes from and not to edit it."""
    yaml_files = [rel for rel in GENERATED.files if rel.endswith((".yml", ".yaml"))]
    wrong = [rel for rel in yaml_files if not GENERATED.files[rel].decode().startswith(HEADER)]
    assert [] == wrong


def test_every_alert_has_a_runbook_section() -> None:
    """Each alert name appears as a '## <name>' heading in its SLO's runbook."""
    spec = load_spec(ROOT / "alerts" / "slo.yaml")
    missing = [
        alert
        for slo in spec.slos
        for alert in alerting.alert_names(spec, slo)
        if f"## {alert}\n"
        not in (ROOT / build.RUNBOOKS_DIR / spec.service / f"{slo.name}.md").read_text()
    ]
    assert [] == missing


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "alerts", tmp_path / "alerts")
    return tmp_path


def test_check_reports_a_hand_edited_rule_file(tmp_path: Path) -> None:
    """Editing a generated file makes the diff name it as stale."""
    root = _copy(tmp_path)
    rules = root / build.ALERTING_RULES
    rules.write_text(rules.read_text().replace("for: 2m", "for: 20m", 1))
    problems = artifacts.diff(root, artifacts.collect(root, ALERTS_ONLY))
    assert [f"stale: {build.ALERTING_RULES}"] == problems


def test_check_reports_a_spec_change_not_rebuilt(tmp_path: Path) -> None:
    """Changing the spec without building makes every dependent file stale."""
    root = _copy(tmp_path)
    spec = root / "alerts" / "slo.yaml"
    spec.write_text(spec.read_text().replace("objective: 99.9", "objective: 99.5", 1))
    problems = artifacts.diff(root, artifacts.collect(root, ALERTS_ONLY))
    assert f"stale: {build.RECORDING_RULES}" in problems


def test_check_reports_an_extra_file_in_an_owned_folder(tmp_path: Path) -> None:
    """A hand-added file in alerts/rules is reported: the folder is generated."""
    root = _copy(tmp_path)
    (root / build.RULES_DIR / "extra.yml").write_text("groups: []\n")
    problems = artifacts.diff(root, artifacts.collect(root, ALERTS_ONLY))
    assert [f"not written by limone-obs: {build.RULES_DIR}/extra.yml"] == [
        line.split(" (")[0] for line in problems
    ]


def test_build_keeps_a_file_it_did_not_write_and_removes_one_it_no_longer_writes(
    tmp_path: Path,
) -> None:
    """The user's own file in an owned folder survives a build (and is reported); a file
    an earlier build wrote (listed in the folder's manifest) and this one does not is
    removed."""
    root = _copy(tmp_path)
    artifacts.build(root, ALERTS_ONLY)
    rules = root / build.RULES_DIR
    (rules / "mine.yml").write_text("groups: []\n")
    (rules / "retired.yml").write_text("groups: []\n")
    manifest = rules / artifacts.MANIFEST
    manifest.write_text(manifest.read_text() + "retired.yml\n")  # as if an old build wrote it
    left: list[str] = []
    changed = artifacts.build(root, ALERTS_ONLY, left=left)
    assert ((rules / "mine.yml").is_file(), (rules / "retired.yml").exists()) == (True, False)
    assert f"{build.RULES_DIR}/retired.yml" in changed
    assert [f"not written by limone-obs: {build.RULES_DIR}/mine.yml"] == [
        line.split(" (")[0] for line in left
    ]


@pytest.mark.parametrize("stale", [False, True], ids=["only-that", "and-stale"])
def test_build_check_on_a_file_of_someone_elses_says_to_move_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stale: bool
) -> None:
    """A file of the user's own in a generated folder fails the check; the advice was
    "run build and commit", which leaves it there. It now says to move it out (and to
    rebuild only when something is stale too)."""
    monkeypatch.chdir(tmp_path)
    root = Path("ops")
    shutil.copytree(ROOT / "alerts", root / "alerts")
    assert 0 == CliRunner().invoke(main, ["build", "--root", "ops"]).exit_code
    (root / build.RULES_DIR / "mine.yml").write_text("groups: []\n")
    if stale:
        rules = root / build.ALERTING_RULES
        rules.write_text(rules.read_text() + "# edited\n")
    result = CliRunner().invoke(main, ["build", "--check", "--root", "ops"])
    move = "move the files not written by limone-obs out of its folders"
    expected = (
        f"artifacts are stale: run `limone-obs build --root ops`, {move}, and commit"
        if stale
        else f"artifacts are up to date, but {move}"
    )
    assert (1, expected) == (result.exit_code, result.output.splitlines()[-1])


def test_build_names_a_file_of_someone_elses_as_it_names_what_it_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --root ops, build's lines read "wrote ops/alerts/..."; its line on a file it did
    not write said "alerts/rules/mine.yml", a path that does not exist from here."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "alerts", Path("ops") / "alerts")
    (Path("ops") / build.RULES_DIR).mkdir(parents=True, exist_ok=True)
    (Path("ops") / build.RULES_DIR / "mine.yml").write_text("groups: []\n")
    result = CliRunner().invoke(main, ["build", "--root", "ops"])
    assert 0 == result.exit_code, result.output
    assert "\nwrote ops/" in f"\n{result.output}"
    assert f"not written by limone-obs: ops/{build.RULES_DIR}/mine.yml (left as is" in (
        result.stderr
    )
    # build --check names it, and a stale file, the same way (it said "alerts/rules/...").
    rules = Path("ops") / build.ALERTING_RULES
    rules.write_text(rules.read_text() + "# edited\n")
    checked = CliRunner().invoke(main, ["build", "--check", "--root", "ops"])
    assert f"not written by limone-obs: ops/{build.RULES_DIR}/mine.yml (" in checked.stderr
    assert f"\nstale: ops/{build.ALERTING_RULES}\n" in f"\n{checked.stderr}"


def test_a_renamed_service_leaves_no_empty_runbook_folder(tmp_path: Path) -> None:
    """Renaming the service moves its runbooks to alerts/runbooks/<new>/: the old
    folder's files are removed, and the folder with them, unless a file of the user's
    is in it."""
    root = _copy(tmp_path)
    spec = root / "alerts" / "slo.yaml"
    runbooks = root / build.RUNBOOKS_DIR

    def renamed(old: str, new: str) -> list[str]:
        spec.write_text(spec.read_text().replace(f"service: {old}\n", f"service: {new}\n", 1))
        artifacts.build(root, ALERTS_ONLY)
        return sorted(p.name for p in runbooks.iterdir() if p.is_dir())

    artifacts.build(root, ALERTS_ONLY)
    assert ["shop"] == renamed("limoneide", "shop")
    (runbooks / "shop" / "notes").mkdir()
    (runbooks / "shop" / "notes" / "mine.md").write_text("mine\n")
    assert ["books", "shop"] == renamed("shop", "books")
    assert [Path("notes/mine.md")] == [
        p.relative_to(runbooks / "shop") for p in (runbooks / "shop").rglob("*") if p.is_file()
    ]


def test_build_check_exits_1_on_drift(tmp_path: Path) -> None:
    """`limone-obs build --check` exits 1 and names the stale alerts file."""
    root = _copy(tmp_path)
    rules = root / build.ALERTING_RULES
    rules.write_text(rules.read_text() + "# edited\n")
    result = CliRunner().invoke(main, ["build", "--check", "--root", str(root)])
    stale = f"stale: {(root / build.ALERTING_RULES).as_posix()}"
    assert (1, True) == (result.exit_code, stale in result.output)


@pytest.mark.parametrize("folder", ["ops", "my ops"])
def test_build_check_suggests_the_build_of_the_same_root(tmp_path: Path, folder: str) -> None:
    """The command `build --root R --check` suggests carries the same --root (quoted for a
    shell), so that copying it rebuilds what was checked."""
    root = tmp_path / folder
    shutil.copytree(ROOT / "alerts", root / "alerts")
    result = CliRunner().invoke(main, ["build", "--check", "--root", str(root)])
    suggested = f"artifacts are stale: run `limone-obs build --root {shlex.quote(str(root))}`"
    assert (1, f"{suggested} and commit") == (result.exit_code, result.output.splitlines()[-1])


def test_build_check_in_the_root_suggests_plain_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run in the project root without --root, the suggestion has no --root either."""
    shutil.copytree(ROOT / "alerts", tmp_path / "alerts")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["build", "--check"])
    expected = "artifacts are stale: run `limone-obs build` and commit"
    assert (1, expected) == (result.exit_code, result.output.splitlines()[-1])


TWO_SLOS = """
service: shop
slos:
  - name: availability
    kind: ratio
    objective: 99.5
  - name: latency
    kind: latency
    objective: 95
    threshold_seconds: 1.0
"""


def test_build_says_removed_for_the_files_of_an_slo_taken_out(tmp_path: Path) -> None:
    """After an SLO leaves the spec, `build` prints `removed` (not `wrote`) for each of its
    files it deletes, and `wrote` for the files it rewrites."""
    spec = tmp_path / "alerts" / "slo.yaml"
    spec.parent.mkdir()
    spec.write_text(TWO_SLOS)
    assert 0 == CliRunner().invoke(main, ["build", "--root", str(tmp_path)]).exit_code
    spec.write_text(TWO_SLOS[: TWO_SLOS.index("  - name: latency")])
    result = CliRunner().invoke(main, ["build", "--root", str(tmp_path)])
    gone = ["alerts/runbooks/shop/latency.md", "alerts/tests/generated/latency.yml"]
    lines = result.output.splitlines()
    # Paths below the current folder, the root's included (what to open or commit).
    assert (0, True, True) == (
        result.exit_code,
        all(f"removed {(tmp_path / rel).as_posix()}" in lines for rel in gone),
        f"wrote {(tmp_path / build.RECORDING_RULES).as_posix()}" in lines,
    ), result.output
    assert [] == [line for line in lines if line.startswith("wrote") and "latency." in line]
    assert [False, False] == [(tmp_path / rel).exists() for rel in gone]


def test_build_restores_the_generated_files(tmp_path: Path) -> None:
    """`artifacts.build` with the alerts generator rewrites an edited file to the golden one."""
    root = _copy(tmp_path)
    rules = root / build.ALERTING_RULES
    rules.write_text("edited\n")
    changed = artifacts.build(root, ALERTS_ONLY)
    assert ([build.ALERTING_RULES], GENERATED.files[build.ALERTING_RULES]) == (
        changed,
        rules.read_bytes(),
    )


def test_a_build_that_cannot_write_one_file_changes_none(tmp_path: Path) -> None:
    """A folder where a dashboard goes: the build stops with a clear error naming it, and
    every file stays as it was (a trial's build replaced the rules and tests, then raised
    a traceback, leaving a tree of two specs' artifacts)."""
    root = tmp_path / "root"
    shutil.copytree(ROOT / "alerts", root / "alerts")
    spec = root / "alerts" / "slo.yaml"
    spec.write_text(spec.read_text().replace("objective: 99.9\n", "objective: 99.5\n", 1))
    (root / "dashboards" / "slos.json").mkdir(parents=True)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    result = CliRunner().invoke(main, ["build", "--root", str(root)])
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert 0 != result.exit_code
    assert "slos.json: it is no file" in result.output, result.output
    assert "Traceback" not in result.output
    assert before == after


def test_a_file_where_a_folder_belongs_is_named(tmp_path: Path) -> None:
    """A file named ``dashboards``: the build said "[Errno 17] File exists" with a path;
    it names the file and what to do, and changes nothing."""
    root = tmp_path / "root"
    shutil.copytree(ROOT / "alerts", root / "alerts")
    (root / "dashboards").write_text("not a folder\n")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    result = CliRunner().invoke(main, ["build", "--root", str(root)])
    assert 0 != result.exit_code
    assert f"{root / 'dashboards'} is a file where a folder belongs" in result.output
    assert before == {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _chattr(flag: str, path: Path) -> bool:
    """``chattr flag path``; False where the filesystem or the user cannot."""
    chattr = shutil.which("chattr")
    if chattr is None:
        return False
    done = subprocess.run([chattr, flag, str(path)], capture_output=True, check=False)
    return done.returncode == 0


def _build_with_immutable(root: Path, stuck: Path) -> tuple[Result, bool]:
    """``limone-obs build --root root`` while ``stuck`` is immutable (``chattr +i``);
    the result, and whether every file below ``root`` is as before. Skipped where
    chattr cannot (not root, a filesystem without it); failed so under ``CI=true``."""
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    if not _chattr("+i", stuck):
        reason = "chattr +i is not possible here (not root, or the filesystem lacks it)"
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        result = CliRunner().invoke(main, ["build", "--root", str(root)])
    finally:
        _chattr("-i", stuck)
    return result, before == {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_build_whose_rename_fails_midway_puts_back_what_it_replaced(tmp_path: Path) -> None:
    """An immutable dashboard (``chattr +i``): the build had renamed the rules, tests and
    runbooks onto their paths when the dashboard's rename failed, and stopped with a
    traceback (a trial's tree then held two specs' artifacts). It puts those files back,
    removes the folders it made, and says nothing was changed."""
    root = tmp_path / "root"
    shutil.copytree(ROOT / "alerts", root / "alerts")
    assert [] != artifacts.build(root)
    spec = root / "alerts" / "slo.yaml"
    spec.write_text(spec.read_text().replace("objective: 99.9\n", "objective: 99.5\n", 1))
    (root / "alerts" / "runbooks" / "limoneide" / "health.md").unlink()
    shutil.rmtree(root / "exporter")  # a folder the build makes again
    stuck = root / "dashboards" / "slos.json"
    (root / build.ALERTING_RULES).chmod(0o600)  # put back with its mode too
    result, unchanged = _build_with_immutable(root, stuck)
    assert 0 != result.exit_code
    assert f"cannot replace {stuck}" in result.output, result.output
    assert "nothing was changed" in result.output
    assert "Traceback" not in result.output
    assert unchanged
    assert not (root / "exporter").exists()
    assert 0o600 == (root / build.ALERTING_RULES).stat().st_mode & 0o777


def test_a_stale_file_that_cannot_be_removed_stops_the_build_before_any_change(
    tmp_path: Path,
) -> None:
    """An SLO taken out whose runbook is immutable: the build wrote every new file (the
    manifest too, so the runbook was never again known as the kit's) and then raised a
    traceback. It stops first, naming the file, and changes nothing."""
    spec = tmp_path / "alerts" / "slo.yaml"
    spec.parent.mkdir()
    spec.write_text(TWO_SLOS)
    assert 0 == CliRunner().invoke(main, ["build", "--root", str(tmp_path)]).exit_code
    spec.write_text(TWO_SLOS[: TWO_SLOS.index("  - name: latency")])
    stuck = tmp_path / "alerts" / "runbooks" / "shop" / "latency.md"
    result, unchanged = _build_with_immutable(tmp_path, stuck)
    assert 0 != result.exit_code
    assert f"cannot remove {stuck}, which this build no longer makes" in result.output
    assert "Traceback" not in result.output
    assert unchanged
