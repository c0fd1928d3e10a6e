"""limone_obs.alerts: one SLO spec generates rules, alerts, routes, tests and runbooks.

Layers, each testable alone (only :mod:`.cli` touches the file system):

- :mod:`.spec` — ``load_spec`` / ``parse_spec``: ``alerts/slo.yaml`` -> validated, frozen
  :class:`~.model.ServiceSpec` (the model lives in :mod:`.model`; selectors in
  :mod:`.selectors`);
- :mod:`.kinds` — one module per SLO kind (ratio, latency, threshold, up): its fields,
  recording and alerting rules, promtool scenarios, runbook sections, status query;
- :mod:`.rules`, :mod:`.alerting` — the rule groups of the spec and the helpers the kinds
  share (plain data);
- :mod:`.alertmanager` — the Alertmanager config (``render_config(spec, webhook_url=...)``);
- :mod:`.unittests` — promtool unit tests of every alert; :mod:`.runbooks` — Markdown;
  :mod:`.kubernetes` — PrometheusRule, ServiceMonitor, Mimir namespace file;
- :mod:`.render` — the deterministic YAML writer; :mod:`.build` — ``artifacts(root)`` for
  ``limone-obs build``; :mod:`.cli` — ``limone-obs check``.
"""
