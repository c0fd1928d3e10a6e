"""Mask secrets in log events: by key at any depth, and by the shape of a value.

A key is sensitive when, lower-cased with ``-`` and spaces read as ``_`` (and also after
splitting camelCase), it equals a configured name or ends in ``_<name>``: ``Password``,
``db_password``, ``X-Api-Key``, ``authToken``. ``prompt_tokens`` is not (``tokens`` is not
``token``), so AI token counts stay visible. ``bytes`` keys are read as text.

Values are masked when they look like a bearer/basic credential (after basic, token or
digest a plain word is kept, so "basic authentication" stays readable), a URL's user info (``scheme://user:pass@``,
``scheme://token@``) or a ``password=...`` pair inside free text, also in a URL's query
string (``?api_key=...``). Values other than text, numbers, containers and dates (bytes,
dataclasses, arbitrary objects) are first turned into what the line would show (their
fields, decoded bytes, ``repr()``) and then checked, so a secret in an object's ``repr``
is masked too. ``(name, value)`` pairs in lists (header lists) mask the value of a
sensitive name.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
import uuid
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, Final

from limone_obs.logging._encode import as_text

MASK: Final = "[REDACTED]"
#: Key names masked by default (matched as described in the module docstring).
DEFAULT_KEYS: Final = frozenset(
    {
        "authorization", "proxy_authorization", "cookie", "set_cookie", "password", "passwd",
        "pwd", "secret", "client_secret", "token", "api_key", "apikey", "access_token",
        "refresh_token", "id_token", "auth_token", "session_token", "private_key",
        "secret_key", "credentials", "x_api_key", "session", "sessionid", "csrf_token",
        "xsrf_token", "signature", "dsn", "connection_string", "access_key",
        "access_key_id", "secret_access_key",
    }
)  # fmt: skip
#: Nesting searched for secrets; anything deeper is replaced by the mask as a whole.
MAX_DEPTH: Final = 32
_CACHE_LIMIT = 4096
_SCALARS = frozenset({int, float, bool})
#: Types orjson writes natively as dates/ids: no secret can hide in them.
_PLAIN_TYPES = (dt.datetime, dt.date, dt.time, uuid.UUID)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s\-.]+")
#: Authorization-style credentials in text: "Bearer eyJ...", "Basic dXNlcjpw...".
#: The credential is checked by :func:`_looks_like_credential` (plain words are kept).
_AUTH_SCHEME = re.compile(r"(?i)\b(bearer|basic|token|digest)(\s+)([A-Za-z0-9._~+/=\-]{6,})")
#: User info in a URL: scheme://user:password@host, scheme://token@host.
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@?#]+@")
#: ``name=value`` / ``"name": "value"`` pairs; the name is checked like a dict key. Only
#: the name and separator are consumed: the value (which may start with an auth scheme)
#: is looked ahead at, so a pair inside a non-secret value (``url=https://h/?token=x``)
#: is still found. ``https://...`` is no pair (``//`` after the colon).
_PAIR = re.compile(
    r"""([A-Za-z0-9_\-]+)(["']?\s*[:=]\s*["']?)(?!//)"""
    r"""(?=((?i:bearer|basic|token|digest)\s+)?([^\s"'&,;]+))"""
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
        self._verdicts: dict[object, bool] = {}
        self._texts: dict[str, str] = {}
        self._safe_keys: set[str] = set()
        self._safe_values: set[Any] = set()
        # Bound once: the sets are only ever cleared, never replaced.
        self._keys_known_safe = self._safe_keys.issuperset
        self._values_known_safe = self._safe_values.issuperset

    def is_sensitive(self, key: object) -> bool:
        """True when ``key`` names a secret (see the module docstring)."""
        if not isinstance(key, str | bytes):
            return False
        verdict = self._verdicts.get(key)
        if verdict is None:
            text = key if isinstance(key, str) else key.decode("utf-8", "replace")
            verdict = any(self._matches(form) for form in normalise_key(text))
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
        cached = self._texts.get(text)  # first: most texts (messages) repeat
        if cached is not None:
            return cached
        if not self.patterns or len(text) < 8:
            return text
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
            text = self._mask_pairs(text)
        if " " in text or "\t" in text:
            text = _AUTH_SCHEME.sub(self._scheme_replacement, text)
        return text

    def _mask_pairs(self, text: str) -> str:
        parts: list[str] = []
        done = 0  # text before this index is already in parts
        for match in _PAIR.finditer(text):
            if match.start() < done or not self.is_sensitive(match.group(1)):
                continue  # inside a masked value, or a harmless name
            parts += (text[done : match.end()], self.mask)
            done = match.end() + len(match.group(3) or "") + len(match.group(4))
        return "".join(parts) + text[done:] if parts else text

    def _scheme_replacement(self, match: re.Match[str]) -> str:
        if _looks_like_credential(match.group(1), match.group(3)):
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
        return self._redact_other(value, depth)

    def _redact_other(self, value: Any, depth: int) -> Any:
        """Dataclasses, enums, dates, bytes and any other object, as the line shows them."""
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            # orjson would write its fields: check them like a dict's.
            fields = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
            return self._redact_items(fields, depth)
        if isinstance(value, _PLAIN_TYPES):
            return value
        if isinstance(value, enum.Enum):
            return self.redact(value.value, depth + 1)  # orjson writes the member's value
        # bytes, Decimal, any object: check the text the line will show (repr() etc.).
        return self.redact_text(as_text(value))

    def _redact_items(self, items: Iterable[tuple[Any, Any]], depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key, val in items:
            out[key] = self.mask if self.is_sensitive(key) else self.redact(val, depth + 1)
        return out

    def _redact_member(self, item: Any, depth: int) -> Any:
        # A header list holds (name, value) pairs: mask the value of a sensitive name.
        if isinstance(item, tuple | list) and len(item) == 2 and self.is_sensitive(item[0]):
            return [self.redact(item[0], depth + 1), self.mask]
        return self.redact(item, depth + 1)

    def redact_event(self, event: MutableMapping[str, Any]) -> None:
        """Mask secrets of ``event`` in place (the hot path: one call per line).

        Fast path: when every key is known not to be sensitive and every value is a
        scalar or text already found clean, two set operations in C settle it.
        """
        try:
            if self._keys_known_safe(event) and self._values_known_safe(event.values()):
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


def _looks_like_credential(scheme: str, word: str) -> bool:
    """After ``Bearer`` always; after basic/token/digest unless ``word`` is a plain
    (lower-case or Capitalised) word: "basic authentication", "token expired"."""
    if scheme.lower() == "bearer" or not word.isalpha():
        return True
    return not (word.islower() or (word[0].isupper() and word[1:].islower()))


def _is_header_object(value: object) -> bool:
    # werkzeug Headers, http.client.HTTPMessage, requests' CaseInsensitiveDict, ...
    return callable(getattr(value, "items", None)) and not isinstance(value, type)
