"""The page's languages: one catalogue (strings.toml) for the operator's page, the kiosk,
the report and the emotion labels; English and Simplified Chinese.

The language is ``[web] language`` when set, else the browser's preference (its
Accept-Language header, which Chromium builds from the same list as navigator.languages),
else English. Pages are filled in here, on the server, so a screen never flashes the
wrong language; the page's script gets its language's strings in a JSON data block.
"""
from __future__ import annotations

import html
import json
import re
import tomllib
from functools import lru_cache
from pathlib import Path

CATALOGUE = Path(__file__).parent / "strings.toml"
LANGUAGES = ("en", "zh-CN")
DEFAULT = "en"
PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+(?:\.[a-z_]+)?)\s*\}\}")


class CatalogueError(ValueError):
    """strings.toml is missing a language or a key: a bug in the shipped file."""


@lru_cache(maxsize=1)
def catalogue() -> dict[str, dict[str, str]]:
    """language -> {"section.key": text}, every key in every language."""
    raw = tomllib.loads(CATALOGUE.read_text(encoding="utf-8"))
    out: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
    for section, entries in raw.items():
        for key, texts in entries.items():
            missing = [lang for lang in LANGUAGES if not texts.get(lang)]
            if missing:
                raise CatalogueError(f"{CATALOGUE.name}: {section}.{key} has no {', '.join(missing)}")
            for lang in LANGUAGES:
                out[lang][f"{section}.{key}"] = texts[lang]
    return out


def strings(lang: str) -> dict[str, str]:
    return catalogue()[lang if lang in LANGUAGES else DEFAULT]


def from_accept_language(header: str) -> str | None:
    """The first language of an Accept-Language header that the page speaks (any Chinese
    is given Simplified Chinese, the one translation there is)."""
    wanted = []
    for i, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        m = re.search(r"q\s*=\s*([0-9.]+)", params)
        if m:
            try:
                q = float(m.group(1))
            except ValueError:
                q = 0.0
        if tag and q > 0:
            wanted.append((-q, i, tag.strip().lower()))
    for _, _, tag in sorted(wanted):
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return None


def choose(configured: str, accept_language: str | None) -> str:
    """``[web] language`` if set; else the browser's preference; else English."""
    if configured:
        return configured
    return from_accept_language(accept_language or "") or DEFAULT


def text(lang: str, key: str, **values) -> str:
    s = strings(lang)[key]
    return s.format(**values) if values else s


def emotion(lang: str, label: str) -> str:
    return strings(lang).get(f"emotion.{label}", label)


def render(page: Path, lang: str, **values: str) -> str:
    """``page`` with {{section.key}} filled in (HTML-escaped), {{lang}}, {{strings}} (the
    language's catalogue as JSON, safe inside a <script type="application/json">) and
    {{name}} for each of ``values``."""
    table = strings(lang)

    def fill(m: re.Match) -> str:
        key = m.group(1)
        if key == "lang":
            return lang
        if key == "strings":
            return json.dumps(table, ensure_ascii=False).replace("</", "<\\/")
        if key in values:
            return html.escape(str(values[key]))
        try:
            return html.escape(table[key])
        except KeyError:
            raise CatalogueError(f"{page.name}: {{{{{key}}}}} is not in {CATALOGUE.name}") from None

    return PLACEHOLDER.sub(fill, page.read_text(encoding="utf-8"))
