"""Notification texts: one template per kind, for the app, email and SMS.

The words live in ``templates/messages.toml`` (edited without touching code) and the email's
HTML in one shared ``templates/layout.html``; both are ``string.Template``s. The HTML body is
the email's plain text, escaped paragraph by paragraph, so no value (a name, a device, a
reason, often typed by someone else) can put markup or a link into an email, and the two
parts of an email never say different things.

Every value is put on one line first: a merchant name or a device string cannot start a
paragraph of its own in the middle of a message, nor break a subject header.

The files are read and checked once, at import: a bad template fails at start-up, not when
the first notification of its kind is sent.
"""

from __future__ import annotations

import html
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import Any, Final

__all__ = ["KINDS", "SMS_LIMIT", "Message", "render"]

#: One GSM-7 SMS segment (values in other alphabets make the provider split it sooner).
SMS_LIMIT: Final = 160
_ELLIPSIS: Final = "..."  # not "…": one non-GSM character makes the whole SMS UCS-2 (70 chars)
_SHORTEST: Final = 12  # a shortened value keeps at least this much, "..." included

# Free text someone wrote or chose: what an SMS shortens first, longest first, so amounts,
# dates and references survive whole.
_SHORTENABLE: Final = frozenset({"reason", "merchant", "sender", "recipient", "device"})
# Sentences the templates end themselves ("failed: $reason. Ref ..."): one final "." goes.
_SENTENCES: Final = frozenset({"reason"})

_FIELDS: Final = frozenset({"title", "body", "subject", "text", "sms", "choices"})
_REQUIRED: Final = ("title", "body", "text", "sms")


@dataclass(frozen=True, slots=True)
class Message:
    """One notification, rendered for every channel.

    ``title``/``body``: the in-app notification; ``subject``/``text``/``html``: the email;
    ``sms``: at most ``SMS_LIMIT`` characters.
    """

    title: str
    body: str
    subject: str
    text: str
    html: str
    sms: str


@dataclass(frozen=True, slots=True)
class _Kind:
    title: Template
    body: Template
    subject: Template
    text: Template
    sms: Template
    choices: Mapping[str, Mapping[str, str]]
    keys: tuple[str, ...]  # every key its templates use, in order of first use


def _template(kind: str, field: str, source: object) -> Template:
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"messages.toml: {kind}.{field} must be a non-empty string")
    template = Template(source.strip())
    if not template.is_valid():
        raise ValueError(f"messages.toml: {kind}.{field} has a bad placeholder ($$ is a dollar)")
    return template


def _choices(kind: str, source: object) -> dict[str, dict[str, str]]:
    if not isinstance(source, dict) or not all(
        isinstance(options, dict) and options and all(isinstance(v, str) for v in options.values())
        for options in source.values()
    ):
        raise ValueError(f"messages.toml: {kind}.choices must map a key to {{value = text}}")
    return {key: dict(options) for key, options in source.items()}


def _kind(kind: str, spec: object) -> _Kind:
    if not isinstance(spec, dict):
        raise ValueError(f"messages.toml: {kind} must be a table")
    unknown = set(spec) - _FIELDS
    missing = [field for field in _REQUIRED if field not in spec]
    if unknown or missing:
        raise ValueError(f"messages.toml: {kind} has {sorted(unknown)}, lacks {missing}")
    parts = {
        field: _template(kind, field, spec.get(field, spec["title"]))
        for field in ("title", "body", "subject", "text", "sms")
    }
    keys = list(dict.fromkeys(key for part in parts.values() for key in part.get_identifiers()))
    choices = _choices(kind, spec.get("choices", {}))
    if stray := set(choices) - set(keys):
        raise ValueError(f"messages.toml: {kind}.choices names unused keys {sorted(stray)}")
    return _Kind(**parts, choices=choices, keys=tuple(keys))


def _load() -> tuple[dict[str, _Kind], str, Template]:
    folder = resources.files("stacklo.integrations") / "templates"
    data: dict[str, Any] = tomllib.loads((folder / "messages.toml").read_text("utf-8"))
    footer = data.pop("footer", None)
    if not isinstance(footer, str):
        raise ValueError("messages.toml: footer must be a string")
    layout = Template((folder / "layout.html").read_text("utf-8"))
    if not layout.is_valid() or set(layout.get_identifiers()) != {
        "subject",
        "heading",
        "content",
        "footer",
    }:
        raise ValueError("layout.html must use exactly $subject, $heading, $content, $footer")
    return {kind: _kind(kind, spec) for kind, spec in data.items()}, footer, layout


_KINDS, _FOOTER, _LAYOUT = _load()
#: Every notification kind there is a template for.
KINDS: Final = frozenset(_KINDS)

_BLANK_LINE = re.compile(r"\n\s*\n")


def render(kind: str, data: Mapping[str, str]) -> Message:
    """The messages of ``kind`` with ``data``'s values (already formatted: "NGN 5,000.00").

    Raises KeyError for an unknown kind or a missing key (named in the error; keys the
    templates do not use are ignored), ValueError for a choice key with an unknown value.
    """
    try:
        spec = _KINDS[kind]
    except KeyError:
        raise KeyError(kind) from None
    missing = [key for key in spec.keys if key not in data]
    if missing:
        error = KeyError(missing[0])
        error.add_note(f"{kind} needs {', '.join(spec.keys)}; missing: {', '.join(missing)}")
        raise error
    values = {key: _one_line(key, data[key]) for key in spec.keys}
    for key, options in spec.choices.items():
        if values[key] not in options:
            raise ValueError(f"{kind}: {key} must be one of {sorted(options)}, not {values[key]!r}")
        values[key] = options[values[key]]

    title = spec.title.substitute(values)
    subject = spec.subject.substitute(values)
    text = spec.text.substitute(values)
    return Message(
        title=title,
        body=spec.body.substitute(values),
        subject=subject,
        text=f"{text}\n\n{_FOOTER}\n",
        html=_LAYOUT.substitute(
            subject=html.escape(subject),
            heading=html.escape(title),
            content=_paragraphs(text),
            footer=html.escape(_FOOTER),
        ),
        sms=_fit_sms(spec.sms, values),
    )


def _one_line(key: str, value: str) -> str:
    line = " ".join(value.split())
    if key in _SENTENCES and line.endswith(".") and not line.endswith(".."):
        line = line[:-1]
    return line


def _paragraphs(text: str) -> str:
    """Plain text as HTML paragraphs, every character of it escaped."""
    return "\n".join(
        '<p style="margin:0 0 16px;">'
        + "<br>\n".join(html.escape(line) for line in paragraph.strip().splitlines())
        + "</p>"
        for paragraph in _BLANK_LINE.split(text)
        if paragraph.strip()
    )


def _shorten(value: str, limit: int) -> str:
    """``value`` in at most ``limit`` characters, cut at a word boundary when one is near."""
    if len(value) <= limit:
        return value
    cut = value[: max(limit - len(_ELLIPSIS), 0)]
    space = cut.rfind(" ")
    if space >= len(cut) // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + _ELLIPSIS


def _fit_sms(template: Template, values: dict[str, str]) -> str:
    """The SMS within ``SMS_LIMIT``: free text shortened first, the whole text cut last."""
    sms = template.substitute(values)
    values = dict(values)
    shortenable = sorted(
        (key for key in template.get_identifiers() if key in _SHORTENABLE),
        key=lambda key: -len(values[key]),
    )
    for key in shortenable:
        excess = len(sms) - SMS_LIMIT
        if excess <= 0:
            break
        values[key] = _shorten(values[key], max(len(values[key]) - excess, _SHORTEST))
        # "...", then the template's own full stop: one is enough.
        sms = template.substitute(values).replace(_ELLIPSIS + ".", _ELLIPSIS)
    return _shorten(sms, SMS_LIMIT)
