"""limone_obs.stack: run the kit locally and exercise it.

- :mod:`.up` — ``limone-obs up``: the demo service under gunicorn, Prometheus, Alertmanager,
  a webhook receiver and load on 127.0.0.1, without Docker.
- :mod:`.load` — :func:`~.load.run_load`, a bounded load generator (``limone-obs load``).
- :mod:`.webhook` — :class:`~.webhook.WebhookReceiver` for Alertmanager webhooks.
- :mod:`.status` — ``limone-obs status``: the SLO table from the recording rules.
- :mod:`.faultctl` — switch the demo service's faults (``limone-obs fault``).
- :mod:`.compose` — the generated ``compose/alertmanager.yml``.
- :mod:`.procs` — child processes: binaries, ports, start, wait, stop.
"""
