"""Mask secrets in log events: by key at any depth, and by the shape of a value.

A key is sensitive when, lower-cased with ``-`` and spaces read as ``_`` (and also after
splitting camelCase), it equals a configured name or ends in ``_<name>``: ``Password``,
``db_password``, ``X-Api-Key``, ``authToken``. ``prompt_tokens`` is not (``tokens`` is not
``token``), so AI token counts stay visible. Values are masked when they look like a
bearer/basic credential, credentials in a URL (``scheme://user:pass@``) or a
``password=...`` pair inside free text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, Final

MASK: Final = "[REDACTED]"
#: Key names masked by default (matched as described in the module docstring).
DEFAULT_KEYS: Final = frozenset(
    {
        "authorization", "proxy_authorization", "cookie", "set_cookie", "password", "passwd",
        "pwd", "secret", "client_secret", "token", "api_key", "apikey", "access_token",
        "refresh_token", "id_token", "auth_token", "session_token", "private_key",
        "secret_key", "credentials", "x_api_key", "session", "sessionid", "csrf_token",
        "xsrf_token", "signature", "dsn", "connection_string",
    }
)  # fmt: skip
#: Nesting searched for secrets; anything deeper is replaced by the mask as a whole.
MAX_DEPTH: Final = 32
_CACHE_LIMIT = 4096
_SCALARS = frozenset({int, float, bool})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s\-.]+")
#: Authorization-style credentials in text: "Bearer eyJ...", "Basic dXNlcjpw...".
_AUTH_SCHEME = re.compile(r"(?i)\b(bearer|basic|token|digest)(\s+)[A-Za-z0-9._~+/=\-]{6,}")
#: Credentials in a URL: scheme://user:password@host.
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s:@]*:[^/\s@]+@")
#: ``name=value`` / ``"name": "value"`` pairs (the value may start with an auth scheme);
#: the name is checked like a dict key.
_PAIR = re.compile(
    r"""([A-Za-z0-9_\-]+)(["']?\s*[:=]\s*["']?)((?i:bearer|basic|token|digest)\s+)?[^\s"'&,;]+"""
)
#: Texts up to this length are remembered with their redacted form (messages repeat).
_TEXT_CACHE_MAX_LEN = 256


def normalise_key(key: str) -> tuple[str, str]:
    """Return ``key`` lower-cased with separators as ``_``, plain and camelCase-split."""
    plain = _SEPARATORS.sub("_", key).lower()
    split = _SEPARATORS.sub("_", _CAMEL.sub("_", key)).lower()
    return plain, split


class Redactor:
    """A structlog processor (and plain function) that masks secrets in an event.

    ``keys`` replaces the default names; ``extra_keys`` adds to them. ``patterns=False``
    turns off value-shape masking (keys are still masked). Containers are copied, never
    changed in place, except the top-level event dict a processor owns.
    """

    def __init__(
        self,
        keys: Iterable[str] = DEFAULT_KEYS,
        *,
        extra_keys: Iterable[str] = (),
        patterns: bool = True,
        mask: str = MASK,
    ) -> None:
        self.keys = frozenset(normalise_key(k)[0] for k in (*keys, *extra_keys))
        self.mask = mask
        self.patterns = patterns
        self._verdicts: dict[str, bool] = {}
        self._texts: dict[str, str] = {}
        self._safe_keys: set[str] = set()
        self._safe_values: set[Any] = set()

    def is_sensitive(self, key: object) -> bool:
        """True when ``key`` names a secret (see the module docstring)."""
        if not isinstance(key, str):
            return False
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = any(self._matches(form) for form in normalise_key(key))
            if len(self._verdicts) >= _CACHE_LIMIT:
                self._verdicts.clear()  # keys from user data must not grow memory forever
            self._verdicts[key] = verdict
        return verdict

    def _matches(self, form: str) -> bool:
        if form in self.keys:
            return True
        parts = form.split("_")
        return any("_".join(parts[i:]) in self.keys for i in range(1, len(parts)))

    def redact_text(self, text: str) -> str:
        """Mask credential-shaped parts of free text (bearer tokens, URL passwords, pairs)."""
        if not self.patterns or len(text) < 8:
            return text
        cached = self._texts.get(text)
        if cached is not None:
            return cached
        redacted = self._scan(text)
        if len(text) <= _TEXT_CACHE_MAX_LEN:
            if len(self._texts) >= _CACHE_LIMIT:
                self._texts.clear()
            self._texts[text] = redacted
        return redacted

    def _scan(self, text: str) -> str:
        # Each pattern needs a character most ids and names lack: test for it first.
        if "://" in text and "@" in text:
            text = _URL_CREDENTIALS.sub(rf"\1{self.mask}@", text)
        if "=" in text or ":" in text:
            text = _PAIR.sub(self._pair_replacement, text)
        if " " in text or "\t" in text:
            text = _AUTH_SCHEME.sub(rf"\1\2{self.mask}", text)
        return text

    def _pair_replacement(self, match: re.Match[str]) -> str:
        if self.is_sensitive(match.group(1)):
            return f"{match.group(1)}{match.group(2)}{self.mask}"
        return match.group(0)

    def redact(self, value: Any, depth: int = 0) -> Any:
        """Return ``value`` with secrets masked at any depth (dicts, lists, header objects)."""
        if isinstance(value, str):
            return self.redact_text(value)
        if value is None or isinstance(value, int | float):
            return value
        if depth >= MAX_DEPTH:
            return self.mask
        if isinstance(value, Mapping) or _is_header_object(value):
            return self._redact_items(value.items(), depth)
        if isinstance(value, list | tuple | set | frozenset):
            return [self._redact_member(item, depth) for item in value]
        return value

    def _redact_items(self, items: Iterable[tuple[Any, Any]], depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key, val in items:
            out[key] = self.mask if self.is_sensitive(key) else self.redact(val, depth + 1)
        return out

    def _redact_member(self, item: Any, depth: int) -> Any:
        # A header list holds (name, value) pairs: mask the value of a sensitive name.
        if isinstance(item, tuple) and len(item) == 2 and self.is_sensitive(item[0]):
            return [item[0], self.mask]
        return self.redact(item, depth + 1)

    def redact_event(self, event: MutableMapping[str, Any]) -> None:
        """Mask secrets of ``event`` in place (the hot path: one call per line).

        Fast path: when every key is known not to be sensitive and every value is a
        scalar or text already found clean, two set operations in C settle it.
        """
        try:
            if event.keys() <= self._safe_keys and self._safe_values.issuperset(event.values()):
                return
        except TypeError:
            pass  # an unhashable value (dict, list): check it field by field
        self._redact_fields(event)

    def _redact_fields(self, event: MutableMapping[str, Any]) -> None:
        safe_keys, safe_values = self._safe_keys, self._safe_values
        if len(safe_keys) >= _CACHE_LIMIT or len(safe_values) >= _CACHE_LIMIT:
            safe_keys.clear()  # bounded: user data may bring endless new keys and values
            safe_values.clear()
        for key, value in event.items():
            if self.is_sensitive(key):
                event[key] = self.mask
                continue
            safe_keys.add(key)
            if value.__class__ is str:
                redacted = self.redact_text(value)
                if redacted == value:
                    safe_values.add(value)
                else:
                    event[key] = redacted
            elif value is None or value.__class__ in _SCALARS:
                safe_values.add(value)
            else:
                event[key] = self.redact(value)

    def __call__(self, _logger: Any, _method: str, event_dict: Any) -> Any:
        """structlog processor form of :meth:`redact_event`."""
        self.redact_event(event_dict)
        return event_dict


def _is_header_object(value: object) -> bool:
    # werkzeug Headers, http.client.HTTPMessage, requests' CaseInsensitiveDict, ...
    return callable(getattr(value, "items", None)) and not isinstance(value, type)
