"""The options file (SPEC §7): the administrator's rules, FlexLM style.

Theory of operation.  The options file is text the license administrator
writes (the license file is the vendor's).  One rule a line::

    KEYWORD argument ...

with ``#`` comments, a trailing ``\\`` continuing a line on the next, and
double quotes around an argument that holds spaces.  This module only
*reads* the file: it checks every line and resolves every group name, and
returns an :class:`Options` value.  What the rules mean for a checkout is
decided in ``engine/policy.py``; which features exist is the license's
business, so a rule naming a feature the license lacks is not an error here
(see :meth:`Options.unknown_features`).

A file with any bad line is refused as a whole, with an :class:`OptionsError`
naming, a line each, every problem found (up to ``MAX_REPORTED``): the file,
the line and what was expected there.  Half an options file could let in
someone the administrator meant to keep out; all of its problems at once
spare the administrator a restart for each.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from netmap_lm.licensing import textfile
from netmap_lm.licensing.licensefile import (
    FEATURE_NAME,
    MAX_BORROW_HOURS,
    MAX_LINGER_SECONDS,
    MAX_SEATS,
    FeatureLine,
    near_names,
    parse_date,
    parse_version,
    whole_number,
)

MAX_OPTIONS_BYTES = 4 * 1024 * 1024  # bytes; FlexLM sites have a few thousand lines at most
MAX_TIMEOUT_SECONDS = 366 * 86400  # a year: any longer and leases effectively never time out
MAX_REPORTED = 20  # problems an OptionsError lists; a file of garbage is not listed whole

# Rules about people and seats (they take a type and a name).
IDENTITY_KEYWORDS = ("EXCLUDE", "EXCLUDEALL", "INCLUDE", "INCLUDEALL", "MAX", "RESERVE")
# Per-feature settings (they take a number).
SETTING_KEYWORDS = ("LINGER", "MAX_BORROW_HOURS", "TIMEOUT", "TIMEOUTALL")
KEYWORDS = tuple(
    sorted((*IDENTITY_KEYWORDS, *SETTING_KEYWORDS, "GROUP", "GROUPCASEINSENSITIVE", "HOST_GROUP"))
)
TYPES = ("USER", "HOST", "DISPLAY", "GROUP", "HOST_GROUP", "INTERNET", "PROJECT")
# feature:KEY=value picks some of a feature's license lines (FlexLM "feature specification").
QUALIFIERS = ("VERSION", "ID", "HOSTID", "EXPDATE")
ALL_USERS = "ALL_USERS"  # MAX n feature USER ALL_USERS: n seats for each user
ALL_GROUPS = "ALL_GROUPS"  # MAX n feature GROUP ALL_GROUPS: n seats for each defined group

# FlexLM keywords an imported options file may hold that netmap_lm does not implement:
# named in the error so the administrator knows the line is understood, just unsupported.
_FLEXLM_ONLY = frozenset(
    {
        "ACTIVATION_EXPIRY_DAYS",
        "ACTIVATION_LOWWATER",
        "AUTOMATIC_REREAD",
        "BORROW_LOWWATER",
        "DAEMON_SELECT_TIMEOUT",
        "DEBUGLOG",
        "EXCLUDE_BORROW",
        "EXCLUDE_ENTITLEMENT",
        "EXCLUDEALL_ENTITLEMENT",
        "FQDN_MATCHING",
        "INCLUDE_BORROW",
        "INCLUDE_ENTITLEMENT",
        "INCLUDEALL_ENTITLEMENT",
        "MAX_CONNECTIONS",
        "MAX_OVERDRAFT",
        "NOLOG",
        "REPORTLOG",
        "TRANSACTION_LOG",
        "VM_ONLY",
    }
)

_GROUP_NAME = re.compile(r"^[^\s\"#]{1,128}$")
_OCTET_PATTERN = re.compile(r"^(\*|\d{1,3})$")
_HOST = re.compile(r"^[A-Za-z0-9_.:*%\-]{1,253}$")  # a host name, an address, '*' wildcards


class OptionsError(ValueError):
    """The options file cannot be used; ``str()`` is ``FILE:LINE: what is wrong``,
    one such line for each problem (``problems``, in file order; ``lineno``
    and ``message`` are the first one's)."""

    def __init__(
        self, path: str, lineno: int, message: str, more: Iterable[tuple[int, str]] = ()
    ) -> None:
        self.path = path
        self.lineno = lineno
        self.message = message
        self.problems = ((lineno, message), *more)
        shown = [f"{path}:{n}: {m}" if n else f"{path}: {m}" for n, m in self.problems]
        if len(shown) > MAX_REPORTED:
            last = self.problems[MAX_REPORTED - 1][0]
            left = len(shown) - MAX_REPORTED
            shown[MAX_REPORTED:] = [f"{path}: … and {left} more problems after line {last}"]
        super().__init__("\n".join(shown))


@dataclass(frozen=True)
class FeatureSpec:
    """``netmap`` or ``netmap:VERSION=6.0``: a feature, or some of its license lines."""

    name: str
    key: str = ""  # one of QUALIFIERS, or "" for every line of the feature
    value: str = ""

    def matches(self, line: FeatureLine) -> bool:
        if line.name != self.name:
            return False
        if not self.key:
            return True
        if self.key == "VERSION":
            return line.version_key == parse_version(self.value)
        if self.key == "ID":
            return line.id == self.value
        if self.key == "HOSTID":
            ids = {h.strip().lower() for h in (line.hostid or "").split(",")}
            return self.value.lower() in ids
        # EXPDATE
        return line.expires == parse_date(self.value)

    def __str__(self) -> str:
        return f"{self.name}:{self.key}={self.value}" if self.key else self.name


@dataclass(frozen=True)
class Who:
    """An identity of the options file: ``USER bob``, ``INTERNET 10.0.0.0/8`` …"""

    type: str  # one of TYPES
    name: str

    def __str__(self) -> str:
        return f"{self.type} {self.name}"


@dataclass(frozen=True)
class Rule:
    """INCLUDE, EXCLUDE, RESERVE or MAX; INCLUDEALL and EXCLUDEALL are INCLUDE
    and EXCLUDE with ``feature=None`` (every feature)."""

    keyword: str
    feature: FeatureSpec | None
    who: Who
    count: int = 0  # RESERVE and MAX
    lineno: int = 0

    def applies_to(self, line: FeatureLine) -> bool:
        return self.feature is None or self.feature.matches(line)


@dataclass(frozen=True)
class Setting:
    """TIMEOUT, LINGER or MAX_BORROW_HOURS of a feature; TIMEOUTALL is TIMEOUT
    with ``feature=None``."""

    keyword: str
    feature: FeatureSpec | None
    value: int  # seconds (TIMEOUT, LINGER) or hours (MAX_BORROW_HOURS)
    lineno: int = 0

    def applies_to(self, line: FeatureLine) -> bool:
        return self.feature is None or self.feature.matches(line)


@dataclass(frozen=True)
class Options:
    path: str = "<options>"
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    host_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()  # in file order
    settings: tuple[Setting, ...] = ()  # in file order
    group_case_insensitive: bool = False  # GROUPCASEINSENSITIVE ON

    def unknown_features(self, licensed: Iterable[str]) -> list[str]:
        """One warning per line that names a feature not in ``licensed``
        (a typo, or a feature not licensed yet): not an error, the server logs it."""
        have = sorted(set(licensed))
        found = []
        items: list[Rule | Setting] = [*self.rules, *self.settings]
        for item in sorted(items, key=lambda x: x.lineno):
            if item.feature is not None and item.feature.name not in have:
                found.append(
                    f"{self.path}:{item.lineno}: {item.keyword} names feature "
                    f"{item.feature.name!r}, which the license does not have"
                    f"{_near(item.feature.name, have)}; the line has no effect"
                )
        return found


def _near(name: str, names: list[str]) -> str:
    """`` (did you mean 'netmap'?)`` for a typo or a case slip, else nothing."""
    near = near_names(name, names, 1)
    return f" (did you mean {near[0]!r}?)" if near else ""


def read_options(path: Path | str) -> Options:
    """Read and check an options file; raises :class:`OptionsError`."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_OPTIONS_BYTES + 1)
    except OSError as exc:
        raise OptionsError(str(path), 0, f"cannot read options file ({exc.strerror})") from None
    if len(data) > MAX_OPTIONS_BYTES:
        raise OptionsError(
            str(path), 0, f"larger than {MAX_OPTIONS_BYTES} bytes; is this an options file?"
        )
    try:
        text = textfile.decode(data, "an options file")
    except textfile.NotText as exc:
        raise OptionsError(str(path), exc.lineno, exc.message) from None
    return parse_options(text, str(path))


def parse_options(text: str, path: str = "<options>") -> Options:
    """Parse options text; raises :class:`OptionsError` naming every bad line."""
    return _Parser(path).parse(text)


# -- the parser -----------------------------------------------------------------------------


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """(first line number, text) for every line, continuations joined."""
    pending: list[str] = []
    start = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not pending:
            start = lineno
            if line.lstrip().startswith("#"):
                continue
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        yield start, " ".join(pending)
        pending = []
    if pending:
        yield start, " ".join(pending)


def _tokens(text: str) -> list[str]:
    """Split on white space; "double quotes" keep spaces; a word starting
    with ``#`` starts a comment."""
    tokens: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        if text[i] == "#":
            break
        if text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise ValueError('a "quoted" argument is not closed')
            tokens.append(text[i + 1 : end])
            i = end + 1
            continue
        j = i
        while j < n and not text[j].isspace():
            j += 1
        tokens.append(text[i:j])
        i = j
    return tokens


_SYNTAX = {
    "EXCLUDE": "EXCLUDE feature[:KEY=value] type name",
    "EXCLUDEALL": "EXCLUDEALL type name",
    "GROUP": "GROUP name user [user ...]",
    "GROUPCASEINSENSITIVE": "GROUPCASEINSENSITIVE ON|OFF",
    "HOST_GROUP": "HOST_GROUP name host [host ...]",
    "INCLUDE": "INCLUDE feature[:KEY=value] type name",
    "INCLUDEALL": "INCLUDEALL type name",
    "LINGER": "LINGER feature[:KEY=value] seconds",
    "MAX": "MAX count feature[:KEY=value] type name",
    "MAX_BORROW_HOURS": "MAX_BORROW_HOURS feature[:KEY=value] hours",
    "RESERVE": "RESERVE count feature[:KEY=value] type name",
    "TIMEOUT": "TIMEOUT feature[:KEY=value] seconds",
    "TIMEOUTALL": "TIMEOUTALL seconds",
}


class _Parser:
    def __init__(self, path: str) -> None:
        self.path = path
        self.groups: dict[str, list[str]] = {}
        self.host_groups: dict[str, list[str]] = {}
        self.rules: list[Rule] = []
        self.settings: list[Setting] = []
        self.case_insensitive = False
        self.lineno = 0
        self.problems: list[tuple[int, str]] = []
        self.broken_groups: set[str] = set()  # named on a GROUP line that has a problem

    def fail(self, message: str) -> OptionsError:
        return OptionsError(self.path, self.lineno, message)

    def parse(self, text: str) -> Options:
        for lineno, line in _logical_lines(text):
            self.lineno = lineno
            try:
                words = _tokens(line)
            except ValueError as exc:
                self.problems.append((lineno, str(exc)))
                continue
            if words:
                try:
                    self.line(words)
                except OptionsError as exc:
                    self.problems.append((lineno, exc.message))
        self.resolve()
        if self.problems:
            (lineno, message), *more = sorted(self.problems, key=lambda p: p[0])
            raise OptionsError(self.path, lineno, message, more)
        return Options(
            path=self.path,
            groups={name: tuple(users) for name, users in self.groups.items()},
            host_groups={name: tuple(hosts) for name, hosts in self.host_groups.items()},
            rules=tuple(self.rules),
            settings=tuple(self.settings),
            group_case_insensitive=self.case_insensitive,
        )

    def line(self, words: list[str]) -> None:
        keyword, args = words[0].upper(), words[1:]
        if keyword not in _SYNTAX:
            if keyword in _FLEXLM_ONLY:
                raise self.fail(
                    f"{keyword} is a FlexLM option netmap_lm does not implement; remove the "
                    "line (accepted keywords: " + ", ".join(KEYWORDS) + ")"
                )
            raise self.fail(f"unknown keyword {words[0]!r}; expected one of " + ", ".join(KEYWORDS))
        if keyword in ("GROUP", "HOST_GROUP"):
            self.group(keyword, args)
        elif keyword == "GROUPCASEINSENSITIVE":
            if len(args) != 1 or args[0].upper() not in ("ON", "OFF"):
                raise self.fail(f"expected {_SYNTAX[keyword]}")
            self.case_insensitive = args[0].upper() == "ON"
        elif keyword in IDENTITY_KEYWORDS:
            self.identity_rule(keyword, args)
        else:
            self.setting(keyword, args)

    def group(self, keyword: str, args: list[str]) -> None:
        if args:  # a rule naming it is not a second problem if this line has one
            self.broken_groups.add(args[0])
        if len(args) < 2:
            what = "user" if keyword == "GROUP" else "host"
            raise self.fail(f"{keyword} needs a name and at least one {what}: {_SYNTAX[keyword]}")
        name, members = args[0], args[1:]
        if not _GROUP_NAME.match(name) or name in (ALL_USERS, ALL_GROUPS):
            raise self.fail(f"{keyword} name {name!r} is not usable: {_SYNTAX[keyword]}")
        if keyword == "HOST_GROUP":
            for host in members:
                self.check_host(host, keyword)
        table = self.groups if keyword == "GROUP" else self.host_groups
        # Several lines of one group add up (FlexLM).
        table.setdefault(name, []).extend(m for m in members if m not in table.get(name, []))
        self.broken_groups.discard(name)

    def identity_rule(self, keyword: str, args: list[str]) -> None:
        syntax = _SYNTAX[keyword]
        count = 0
        if keyword in ("RESERVE", "MAX"):
            if not args:
                raise self.fail(f"{keyword} needs a count: {syntax}")
            low = 1 if keyword == "RESERVE" else 0
            count = self.number(args[0], keyword, "count", low, MAX_SEATS, syntax)
            args = args[1:]
        feature = None
        if keyword not in ("INCLUDEALL", "EXCLUDEALL"):
            if not args:
                raise self.fail(f"{keyword} needs a feature: {syntax}")
            feature = self.feature_spec(args[0], keyword)
            args = args[1:]
        if not args:
            raise self.fail(f"{keyword} needs a type, one of {', '.join(TYPES)}: {syntax}")
        kind = args[0].upper()
        if kind not in TYPES:
            raise self.fail(
                f"{keyword}: {args[0]!r} is not a type; expected one of {', '.join(TYPES)} "
                f"({syntax})"
            )
        if len(args) != 2:
            problem = "needs" if len(args) < 2 else "takes one"
            raise self.fail(
                f"{keyword}: type {kind} {problem} name (for a list, define a GROUP or "
                f"HOST_GROUP and name it): {syntax}"
            )
        name = args[1]
        if name in (ALL_USERS, ALL_GROUPS):
            wanted = "USER" if name == ALL_USERS else "GROUP"
            if keyword != "MAX" or kind != wanted:
                raise self.fail(
                    f"{wanted} {name} is only for MAX: MAX count feature {wanted} {name}"
                )
        elif kind == "INTERNET":
            try:
                internet_pattern(name)
            except ValueError as exc:
                raise self.fail(f"{keyword}: {exc}") from None
        elif kind == "HOST":
            self.check_host(name, keyword)
        self.rules.append(
            Rule(keyword.removesuffix("ALL"), feature, Who(kind, name), count, self.lineno)
        )

    def setting(self, keyword: str, args: list[str]) -> None:
        syntax = _SYNTAX[keyword]
        feature = None
        if keyword != "TIMEOUTALL":
            if not args:
                raise self.fail(f"{keyword} needs a feature: {syntax}")
            feature = self.feature_spec(args[0], keyword)
            args = args[1:]
        unit = "hours" if keyword == "MAX_BORROW_HOURS" else "seconds"
        if len(args) != 1:
            raise self.fail(f"{keyword} needs one number of {unit}: {syntax}")
        low, high = {
            "TIMEOUT": (1, MAX_TIMEOUT_SECONDS),
            "TIMEOUTALL": (1, MAX_TIMEOUT_SECONDS),
            "LINGER": (0, MAX_LINGER_SECONDS),
            "MAX_BORROW_HOURS": (0, MAX_BORROW_HOURS),
        }[keyword]
        value = self.number(args[0], keyword, unit, low, high, syntax)
        self.settings.append(Setting(keyword.removesuffix("ALL"), feature, value, self.lineno))

    def number(self, text: str, keyword: str, what: str, low: int, high: int, syntax: str) -> int:
        value = whole_number(text, low, high)
        if value is None:
            raise self.fail(
                f"{keyword} {what} {text!r} must be a whole number from {low} to {high}: {syntax}"
            )
        return value

    def feature_spec(self, text: str, keyword: str) -> FeatureSpec:
        syntax = _SYNTAX[keyword]
        # "feature KEY=value" (quoted, FlexLM's alternative) or feature:KEY=value.
        name, sep, qualifier = text.replace(" ", ":", 1).partition(":")
        if not FEATURE_NAME.fullmatch(name):
            raise self.fail(
                f"{keyword}: {name!r} is not a feature name (letters, digits, '_', '.', '-'): "
                f"{syntax}"
            )
        if not sep:
            return FeatureSpec(name)
        key, eq, value = qualifier.strip().partition("=")
        key = key.upper()
        if key not in QUALIFIERS or not eq or not value:
            raise self.fail(
                f"{keyword}: feature {text!r}: after ':' expected KEY=value with KEY one of "
                + ", ".join(QUALIFIERS)
            )
        try:
            if key == "VERSION":
                parse_version(value)
            elif key == "EXPDATE":
                parse_date(value)
        except ValueError as exc:
            raise self.fail(f"{keyword}: feature {text!r}: {exc}") from None
        return FeatureSpec(name, key, value)

    def check_host(self, host: str, keyword: str) -> None:
        if not _HOST.match(host):
            raise self.fail(
                f"{keyword}: HOST {host!r} is not a host name, address or wildcard "
                "like *.lab.example"
            )

    def resolve(self) -> None:
        """Every GROUP or HOST_GROUP a rule names must be defined (anywhere in the file)."""
        for rule in self.rules:
            table = {"GROUP": self.groups, "HOST_GROUP": self.host_groups}.get(rule.who.type)
            if (
                table is not None
                and rule.who.name != ALL_GROUPS
                and rule.who.name not in table
                and rule.who.name not in self.broken_groups
            ):
                self.problems.append(
                    (
                        rule.lineno,
                        f"{rule.keyword}: {rule.who.type} {rule.who.name!r} is not defined; add "
                        f"a line '{rule.who.type} {rule.who.name} "
                        f"{'user' if rule.who.type == 'GROUP' else 'host'} ...'",
                    )
                )


# -- INTERNET patterns ----------------------------------------------------------------------


@dataclass(frozen=True)
class InternetPattern:
    """An address, a CIDR network, or an IPv4 address with ``*`` octets."""

    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    octets: tuple[int | None, ...] = ()  # the wildcard form, None for '*'

    def matches(self, address: str) -> bool:
        ip = _client_ip(address)
        if ip is None:
            return False
        if self.network is not None:
            return ip.version == self.network.version and ip in self.network
        if ip.version != 4:
            return False
        return all(p is None or p == b for p, b in zip(self.octets, ip.packed, strict=True))


@functools.lru_cache(maxsize=4096)  # client addresses repeat; parsing one costs microseconds
def _client_ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A client's address; IPv4 on a dual-stack socket (``::ffff:10.1.2.3``) as IPv4."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def internet_pattern(text: str) -> InternetPattern:
    """Parse an INTERNET name; ``ValueError`` says what is expected."""
    parts = text.split(".")
    if "*" in text and len(parts) == 4 and all(_OCTET_PATTERN.match(p) for p in parts):
        octets = tuple(None if p == "*" else int(p) for p in parts)
        if all(o is None or o <= 255 for o in octets):
            return InternetPattern(None, octets)
    else:
        try:
            return InternetPattern(ipaddress.ip_network(text, strict=False))
        except ValueError:
            pass
    raise ValueError(
        f"INTERNET {text!r}: expected an address (10.1.2.3), a wildcard "
        "(192.168.1.*) or a CIDR network (10.0.0.0/8)"
    )
