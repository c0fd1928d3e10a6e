"""Descriptions and annotations Prometheus parses as Go templates: what check refuses is
what Prometheus refuses (a review's ``{{ end }}`` without its ``if`` passed check and
build, and promtool refused the rule file)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from limone_obs.alerts import _templates
from tests.support import need

#: Texts Prometheus refuses, and the words check's message gives.
REFUSED = [
    ("Broken {{ end }} here", "{{ end }} without an {{ if }}"),
    ("{{ if gt $value 1.0 }}high", "never closes it with {{ end }}"),
    ("{{ range $i := .Labels }}{{ with .x }}{{ end }}", "{{ range }} and never closes"),
    ("{{ else }} alone", "{{ else }} outside"),
    ("{{ if 1 }}a{{ else }}b{{ else }}c{{ end }}", "a second {{ else }}"),
    ("{{ break }}", "{{ break }} outside a {{ range }}"),
    ("{{ if 1 }}{{ continue }}{{ end }}", "{{ continue }} outside"),
    ("empty {{ }} action", "an empty template action"),
    ("empty {{- -}} action", "an empty template action"),
    ("{{ .Broken within 0.8 s", "never closes with }}"),
]
#: Texts Prometheus takes.
TAKEN = [
    "Plain text, }} and { braces",
    "{{ $value | humanizePercentage }} of requests",
    "{{ if gt $value 1.0 }}high{{ else if gt $value 0.5 }}mid{{ else }}low{{ end }}",
    "{{- if 1 -}} trimmed {{- end -}}",
    "{{ range $k, $v := $labels }}{{ $k }}={{ $v }}{{ if 1 }}{{ break }}{{ end }}{{ end }}",
    "{{ with $labels.job }}job {{ . }}{{ else }}no job{{ end }}",
    '{{ define "x" }}d{{ end }}{{ template "x" }}',
    "{{/* a comment */}}text{{- /* trimmed comment */ -}}",
    '{{ "{{ end }}" }} and {{`{{ if }}`}}',
    "{{-3}} is a number",
]


@pytest.mark.parametrize(("text", "words"), REFUSED)
def test_a_template_prometheus_refuses_is_named(text: str, words: str) -> None:
    """Blocks closed and nested as Go's text/template requires, no empty action."""
    said = _templates.problem(text) or ""
    assert words in said, said


@pytest.mark.parametrize("text", TAKEN)
def test_a_template_prometheus_takes_passes(text: str) -> None:
    """else-if chains, trim markers, comments, strings holding braces, define/template."""
    assert _templates.problem(text) is None


def test_the_refused_templates_are_those_prometheus_refuses(tmp_path: Path) -> None:
    """Ground truth from Prometheus' own loader (promtool check rules): each refused
    text fails there as an annotation, each passed one loads."""
    promtool = need("promtool")
    verdicts = {}
    for text in [t for t, _ in REFUSED] + TAKEN:
        rules = tmp_path / "rules.yml"
        rule = {"alert": "A", "expr": "vector(1)", "annotations": {"description": text}}
        rules.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [rule]}]}))
        done = subprocess.run(
            [promtool, "check", "rules", str(rules)], capture_output=True, timeout=60, check=False
        )
        verdicts[text] = done.returncode == 0
    assert {t: False for t, _ in REFUSED} | dict.fromkeys(TAKEN, True) == verdicts
