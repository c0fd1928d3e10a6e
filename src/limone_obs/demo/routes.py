"""The demo service's routes; :func:`register` adds them to an app built by ``create_app``."""

from __future__ import annotations

import hmac
import ipaddress
import sqlite3
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, abort, g, jsonify, render_template, request, stream_with_context

from limone_obs import conventions as c
from limone_obs.demo import db
from limone_obs.errors import ConfigError
from limone_obs.logging import get_logger

log = get_logger(__name__)

if TYPE_CHECKING:
    from limone_obs.demo.app import DemoState

#: Endpoints the fault switches never touch, so faults can always be turned off again.
_EXEMPT = frozenset({"admin_faults"})
#: The canned answer of the simulated AI model, sent token by token when streamed.
_COMPLETION = (
    "def fibonacci(n: int) -> int:\n    a, b = 0, 1\n    for _ in range(n):\n"
    "        a, b = b, a + b\n    return a\n"
)
MAX_PROMPT_CHARS = 4000
_MODEL = "demo-coder"
#: Headers a reverse proxy adds; without a token their presence means "not a local client".
_PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-IP")


class InjectedFaultError(RuntimeError):
    """Raised by the error-rate fault switch; the app answers 500."""


def register(app: Flask, state: DemoState) -> None:
    """Add every route, the fault hook and the error handlers of the demo to ``app``."""
    app.before_request(lambda: _apply_faults(state))
    app.teardown_appcontext(_close_db)
    app.register_error_handler(500, _server_error)
    app.register_error_handler(404, _not_found)
    _cache_languages(state)
    _register_projects(app, state)
    _register_pages(app, state)
    _register_ai(app, state)
    _register_admin(app, state)
    app.add_url_rule("/health", "health", lambda: {"status": "ok"})


def _apply_faults(state: DemoState) -> Any:
    if request.endpoint in _EXEMPT:
        return None
    switches = state.faults.current()
    if switches.outage:
        return jsonify(error="service unavailable (outage fault switch)"), 503
    rate = switches.error_rate
    if request.endpoint != "health" and rate and state.random.random() < rate:
        raise InjectedFaultError(f"injected by the error-rate fault switch ({rate:g})")
    return None


def _server_error(_error: Exception) -> Any:
    return jsonify(error="internal server error"), 500


def _not_found(_error: Exception) -> Any:
    return jsonify(error="not found"), 404


def _conn(state: DemoState) -> sqlite3.Connection:
    if "demo_db" not in g:
        g.demo_db = db.connect(state.db_path)
    conn: sqlite3.Connection = g.demo_db
    return conn


def _close_db(_exc: BaseException | None) -> None:
    conn = g.pop("demo_db", None)
    if conn is not None:
        conn.close()


def _register_projects(app: Flask, state: DemoState) -> None:
    @app.get("/projects")
    def projects() -> Any:
        if state.faults.current().n_plus_one:
            return jsonify(projects=_projects_one_by_one(state))
        with state.dependency(c.DEPENDENCY_DB, "list_projects"):
            rows = db.list_projects(_conn(state))
        return jsonify(projects=rows)

    @app.get("/projects/<int:project_id>")
    def project(project_id: int) -> Any:
        return _project_or_404(state, project_id)

    @app.post("/projects")
    def create_project() -> Any:
        body = request.get_json(silent=True) or {}
        name, language = body.get("name"), body.get("language")
        if not isinstance(name, str) or not 0 < len(name) <= 100:
            return jsonify(error='"name": a string of 1 to 100 characters is required'), 400
        if not isinstance(language, str) or _language(state, language) is None:
            return jsonify(error=f'"language": {language!r} is not a known language'), 400
        with state.dependency(c.DEPENDENCY_DB, "create_project"):
            row = db.create_project(_conn(state), name, language)
        log.info("project created", project_id=row["id"], language=language)
        return jsonify(row), 201


def _projects_one_by_one(state: DemoState) -> list[dict[str, Any]]:
    """The N+1 fault: one query for the ids, then one query per project."""
    with state.dependency(c.DEPENDENCY_DB, "list_project_ids"):
        ids = db.list_project_ids(_conn(state))
    rows = []
    for project_id in ids:
        with state.dependency(c.DEPENDENCY_DB, "get_project"):
            row = db.get_project(_conn(state), project_id)
        if row is not None:
            rows.append(row)
    return rows


def _project_or_404(state: DemoState, project_id: int) -> dict[str, Any]:
    with state.dependency(c.DEPENDENCY_DB, "get_project"):
        row = db.get_project(_conn(state), project_id)
    if row is None:
        abort(404)
    return row


def _language(state: DemoState, name: str) -> dict[str, Any] | None:
    """A language's settings through the Redis cache (when there is one), else the DB."""
    found: dict[str, Any] | None = state.language_settings(name)
    return found


def _cache_languages(state: DemoState) -> None:
    def language_settings(name: str) -> dict[str, Any] | None:
        with state.dependency(c.DEPENDENCY_DB, "get_language"):
            return db.get_language(_conn(state), name)

    ttl = state.settings.cache_ttl
    state.language_settings = state.cached(language_settings, c.DEMO_CACHE_LANGUAGES, ttl)


def _register_pages(app: Flask, state: DemoState) -> None:
    @app.get("/languages/<language>")
    def language(language: str) -> Any:
        row = _language(state, language)
        if row is None:
            abort(404)
        return row

    @app.get("/editor/<int:project_id>")
    def editor(project_id: int) -> Any:
        project = _project_or_404(state, project_id)
        settings = _language(state, project["language"])
        lines = _COMPLETION.splitlines()
        return render_template("editor.html", project=project, language=settings, lines=lines)


def _register_ai(app: Flask, state: DemoState) -> None:
    @app.post("/ai/complete")
    def complete() -> Any:
        body = request.get_json(silent=True) or {}
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not 0 < len(prompt) <= MAX_PROMPT_CHARS:
            limit = MAX_PROMPT_CHARS
            return jsonify(error=f'"prompt": a string of 1 to {limit} characters is required'), 400
        tokens = _tokens(_COMPLETION)
        latency = state.ai_latency()
        if body.get("stream") is True or request.args.get("stream") == "1":
            chunks = stream_with_context(_stream(state, tokens, latency))
            return Response(chunks, mimetype="text/plain")
        answer = state.ai_answer(prompt, _MODEL)
        log.info("completion finished", model=_MODEL, tokens=answer["tokens"], stream=False)
        return jsonify(answer)

    def ai_answer(prompt: str, model: str) -> dict[str, Any]:
        del prompt  # the simulated model gives one answer; the prompt is part of the key
        tokens = _tokens(_COMPLETION)
        with state.dependency(c.DEPENDENCY_AI, "complete"):
            time.sleep(state.ai_latency())
        return {"completion": "".join(tokens), "tokens": len(tokens), "model": model}

    state.ai_answer = state.cached(ai_answer, c.DEMO_CACHE_AI, state.settings.ai_cache_ttl)


def _tokens(text: str) -> list[str]:
    """Split ``text`` into word-and-whitespace tokens that join back to ``text``."""
    tokens: list[str] = []
    for word in text.split(" "):
        tokens.append(word if not tokens else " " + word)
    return tokens


def _stream(state: DemoState, tokens: list[str], latency: float) -> Iterator[str]:
    # A model answers its first token after ~30 % of the call, then streams the rest.
    with state.dependency(c.DEPENDENCY_AI, "complete_stream"):
        time.sleep(latency * 0.3)
        step = latency * 0.7 / len(tokens)
        for token in tokens:
            time.sleep(step)
            yield token
    log.info("completion finished", model="demo-coder", tokens=len(tokens), stream=True)


def _register_admin(app: Flask, state: DemoState) -> None:
    @app.route("/admin/faults", methods=["GET", "PUT", "DELETE"], endpoint="admin_faults")
    def admin_faults() -> Any:
        refusal = _admin_refusal(state.settings.admin_token)
        if refusal is not None:
            return refusal
        if request.method == "DELETE":
            state.faults.write(type(state.faults.current())())
        elif request.method == "PUT":
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                return jsonify(error='send a JSON object, e.g. {"error_rate": 0.5}'), 400
            try:
                state.faults.write(state.faults.current().updated(body, "request body"))
            except ConfigError as exc:
                return jsonify(error=str(exc)), 400
        if request.method != "GET":
            log.warning("fault switches changed", faults=state.faults.current().to_json())
        return jsonify(state.faults.current().to_json())


def _admin_refusal(token: str | None) -> Any:
    """None if the request may use the admin endpoint, else the 401/403 answer.

    With a token configured, only the token counts (the client's address says nothing
    behind a proxy or in a container). Without one, only a direct loopback client passes:
    a reverse proxy on the same host connects from loopback for every client, so a
    request carrying proxy headers is refused.
    """
    if token is not None:
        sent = request.headers.get("Authorization", "")
        if hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return None
        hint = f"send Authorization: Bearer <the {c.DEMO_ADMIN_TOKEN_ENV} value>"
        return jsonify(error=f"the admin endpoint needs its token: {hint}"), 401
    if not _from_loopback():
        return jsonify(error="the admin endpoint answers loopback clients only"), 403
    proxied = [h for h in _PROXY_HEADERS if h in request.headers]
    if proxied:
        return jsonify(
            error=f"the admin endpoint refuses proxied requests ({', '.join(proxied)}) "
            f"unless {c.DEMO_ADMIN_TOKEN_ENV} is set on the service"
        ), 403
    return None


def _from_loopback() -> bool:
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False
