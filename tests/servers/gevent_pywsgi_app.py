"""Serve an instrumented app with gevent's own WSGI server (``gevent.pywsgi``, also
gunicorn's ``gevent_pywsgi`` worker): ``python -m tests.servers.gevent_pywsgi_app PORT``.

gevent's server sends nothing for an empty chunk, not even the headers: a body failing
after only empty chunks is answered 500 by it.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402 - after patching, as gevent asks

from flask import Flask  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

from limone_obs import Metrics  # noqa: E402
from tests.lifecycle_app import stream_empty_then_fails, stream_fails_first  # noqa: E402


def create_app() -> Flask:
    """``/ready``, ``/stream-fails-first`` and ``/stream-empty-then-fails``."""
    app = Flask("gevent_pywsgi_app")
    Metrics(app)
    app.get("/ready")(lambda: "ok")
    app.add_url_rule("/stream-fails-first", view_func=stream_fails_first)
    app.add_url_rule("/stream-empty-then-fails", view_func=stream_empty_then_fails)
    return app


if __name__ == "__main__":
    WSGIServer(("127.0.0.1", int(sys.argv[1])), create_app(), log=None).serve_forever()
