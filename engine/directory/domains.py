"""Which SDOH domains a service belongs to, from its taxonomy terms: the mapping is data
(`taxonomy-domains.json` beside this module, or the file CAREPATH_RESOURCE_TAXONOMY_MAP names)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import ValidationFailed

DOMAINS = ("food", "housing", "transportation", "utilities", "safety")
SHIPPED_MAP = Path(__file__).with_name("taxonomy-domains.json")


@dataclass(frozen=True)
class GravityCode:
    code: str
    display: str


@dataclass(frozen=True)
class DomainRule:
    domain: str
    display: str
    gravity: tuple[GravityCode, ...]
    code_prefixes: tuple[str, ...]
    codes: dict[str, frozenset[str]]  # taxonomy name fragment (lower case) -> exact codes (upper case)
    names: re.Pattern[str] | None

    def matches(self, code: str, name: str, taxonomy: str) -> bool:
        """`code` upper-cased, `name` and `taxonomy` lower-cased."""
        if code and (code.startswith(self.code_prefixes) or any(
                code in codes and (not taxonomy or fragment in taxonomy) for fragment, codes in self.codes.items())):
            return True
        return bool(name) and self.names is not None and self.names.search(name) is not None


@dataclass(frozen=True)
class TaxonomyMap:
    rules: tuple[DomainRule, ...]
    gravity_system: str

    def gravity_codes(self, domain: str) -> tuple[GravityCode, ...]:
        """The Gravity SDOH category codes of a domain (system `gravity_system`), for FHIR."""
        return next((rule.gravity for rule in self.rules if rule.domain == domain), ())

    def domains_of(self, terms: Iterable[tuple[str | None, str | None, str | None]]) -> set[str]:
        """The domains of a service with these (code, name, taxonomy) terms."""
        found: set[str] = set()
        for code, name, taxonomy in terms:
            keys = ((code or "").strip().upper(), (name or "").lower(), (taxonomy or "").lower())
            found.update(rule.domain for rule in self.rules if rule.matches(*keys))
        return found


def load_taxonomy_map(path: Path | None = None) -> TaxonomyMap:
    """The shipped mapping, or the replacement at `path`; a malformed file is a ValidationFailed naming it.
    Read again when the file changes (an edited map applies from the next import)."""
    chosen = path or SHIPPED_MAP
    try:
        stat = chosen.stat()
        changed = (stat.st_mtime_ns, stat.st_size)
    except OSError as exc:
        raise ValidationFailed(f"the taxonomy map {chosen} cannot be read: {exc.strerror}") from None
    return _load(str(chosen), changed)


@cache
def _load(path: str, changed: tuple[int, int]) -> TaxonomyMap:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        domains = raw["domains"]
        rules = tuple(_rule(name, domains[name]) for name in DOMAINS if name in domains)
        unknown = set(domains) - set(DOMAINS)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValidationFailed(f"the taxonomy map {path} cannot be read: {exc!r}") from None
    if unknown:
        raise ValidationFailed(f"the taxonomy map {path} names unknown domains {sorted(unknown)}; "
                               f"the domains are {', '.join(DOMAINS)}")
    return TaxonomyMap(rules, str(raw.get("gravity_system", "")))


def _rule(domain: str, raw: dict[str, Any]) -> DomainRule:
    names = [name.lower() for name in _strings(raw, "names")]
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(n) for n in names) + r")\b") if names else None
    gravity = tuple(GravityCode(str(g["code"]), str(g.get("display", g["code"]))) for g in raw.get("gravity") or [])
    prefixes = tuple(prefix.strip().upper() for prefix in _strings(raw, "code_prefixes"))
    by_taxonomy = raw.get("codes") or {}
    if not isinstance(by_taxonomy, dict):
        raise TypeError("'codes' must be an object of taxonomy name -> list of codes")
    codes = {str(fragment).lower(): frozenset(c.strip().upper() for c in _strings(by_taxonomy, fragment))
             for fragment in by_taxonomy}
    return DomainRule(domain, str(raw.get("display", domain)), gravity, prefixes, codes, pattern)


def _strings(raw: dict[str, Any], key: str) -> list[str]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TypeError(f"'{key}' must be a list of strings")
    return value
