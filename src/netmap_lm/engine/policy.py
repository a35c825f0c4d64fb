"""The options file applied to checkouts (SPEC §7): who may use which seat.

Theory of operation.  The rules of an :class:`~netmap_lm.licensing.options.Options`
are compiled once per engine (at start and at every reread) into one
:class:`LinePolicy` per license line: the rules that name that line's
feature (or every feature), already resolved to matcher functions.  A
checkout then looks only at the rules of the lines that could serve it;
a line no rule mentions has no policy at all and costs nothing.

Precedence, highest first (FlexLM's):

1. EXCLUDE / EXCLUDEALL: a matching client is refused (NOT_AUTHORIZED), even
   for a seat reserved for it.
2. RESERVE: reserved seats go only to members of the reservation, and a member
   takes a free reserved seat before any other — even when a MAX it falls
   under is reached (a reservation is a promise).  A member also counts as
   included.
3. MAX: a matching client gets no unreserved seat once the identity holds
   ``count`` seats of the feature (reserved ones included; a GROUP's members
   count together; ``USER ALL_USERS`` is per user).
4. INCLUDE / INCLUDEALL: once a line has an include list, whoever matches
   none of it (and holds no reservation of the feature) is refused.

The engine owns the seats; the reservation and MAX counters are kept here,
on objects the engine updates as seats come and go.  Pure: no clock, no I/O.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from netmap_lm.licensing.licensefile import FeatureLine
from netmap_lm.licensing.options import (
    ALL_GROUPS,
    ALL_USERS,
    Options,
    Rule,
    Setting,
    Who,
    internet_pattern,
)


class Client(Protocol):
    """What the rules look at: a checkout request, or a held lease."""

    @property
    def user(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def display(self) -> str: ...
    @property
    def project(self) -> str: ...
    @property
    def address(self) -> str: ...


Matcher = Callable[[Client], bool]


@dataclass(eq=False)
class Identity:
    who: Who
    matches: Matcher
    rank: tuple[int, int]  # narrower identities first: a single name, a group by size, a wildcard

    @property
    def label(self) -> str:
        return str(self.who)


class Reservation:
    """The seats one RESERVE rule holds on one license line."""

    __slots__ = ("cap", "identity", "overflow", "rule", "used")

    def __init__(self, rule: Rule, identity: Identity, cap: int) -> None:
        self.rule = rule
        self.identity = identity
        self.cap = cap  # seats reserved on this line
        self.used = 0  # of them held (by members, by definition)
        # Unreserved seats of this line held by members while this reservation was
        # full: when a reserved seat frees, one of them moves into it, freeing an
        # unreserved seat for everybody else.  Oldest first; an OrderedDict, as a
        # dict slows down when emptied from the front.
        self.overflow: OrderedDict[Any, None] = OrderedDict()

    def has_room(self) -> bool:
        return self.used < self.cap


class MaxLimit:
    """One MAX rule: seats held by its identity across the lines it names."""

    __slots__ = ("count", "counts", "identity", "per_user", "rule")

    def __init__(self, rule: Rule, identity: Identity, per_user: bool) -> None:
        self.rule = rule
        self.identity = identity
        self.count = rule.count
        self.per_user = per_user  # USER ALL_USERS: a cap for every user
        self.counts: dict[str, int] = {}

    def key(self, client: Client) -> str:
        return client.user if self.per_user else ""

    def reached(self, client: Client) -> bool:
        return self.counts.get(self.key(client), 0) >= self.count

    def describe(self, client: Client) -> str:
        if self.per_user:
            return f"MAX {self.count} per user ({self.identity.label}) reached for {client.user}"
        return f"MAX {self.count} for {self.identity.label} reached"


@dataclass(eq=False)
class LinePolicy:
    """The rules of one license line, compiled."""

    excludes: tuple[Identity, ...] = ()
    includes: tuple[Identity, ...] | None = None  # None: no include list, everybody may
    reserve_members: tuple[Identity, ...] = ()  # RESERVE identities of the line: included
    reservations: list[Reservation] = field(default_factory=list)  # seats on this line
    maxes: tuple[MaxLimit, ...] = ()
    timeout: int | None = None  # seconds; TIMEOUT / TIMEOUTALL
    linger: int = 0  # seconds; LINGER
    max_borrow_hours: int | None = None  # MAX_BORROW_HOURS

    @property
    def judges(self) -> bool:
        """True when a checkout on this line has any rule to pass."""
        return bool(self.excludes or self.includes is not None or self.reservations or self.maxes)

    def refusal(self, client: Client, feature: str) -> str | None:
        """Why ``client`` may not use this line (EXCLUDE, INCLUDE), or None."""
        for identity in self.excludes:
            if identity.matches(client):
                return (
                    f"{_person(client)} may not use {feature}: excluded by the options "
                    f"file (EXCLUDE {identity.label})"
                )
        if self.includes is not None and not any(
            identity.matches(client) for identity in (*self.includes, *self.reserve_members)
        ):
            return (
                f"{_person(client)} may not use {feature}: not on its INCLUDE list in "
                "the options file"
            )
        return None

    def reservation_for(self, client: Client) -> Reservation | None:
        """The reservation with a free seat ``client`` may take, narrowest first."""
        for reservation in self.reservations:
            if reservation.has_room() and reservation.identity.matches(client):
                return reservation
        return None

    def max_reached(self, client: Client) -> MaxLimit | None:
        for limit in self.maxes:
            if limit.identity.matches(client) and limit.reached(client):
                return limit
        return None

    def reserved_for_others(self) -> str:
        free = [r for r in self.reservations if r.has_room()]
        return ", ".join(f"{r.identity.label} ({r.cap - r.used})" for r in free)


class Policy:
    """Every line's compiled rules, and what the server should log about them."""

    def __init__(self, options: Options | None, pools: dict[str, Sequence[FeatureLine]]) -> None:
        """``pools`` maps each feature name to its license lines in the order
        the engine uses them (a reservation fills that order's counted lines)."""
        self.options = options
        self.lines: dict[str, LinePolicy] = {}
        self.warnings: list[str] = []
        self._reservations: dict[str, list[tuple[Rule, list[Reservation]]]] = {}
        if options is None:
            return
        self.warnings.extend(options.unknown_features(pools))
        compiler = _Compiler(options)
        lines = [line for group in pools.values() for line in group]
        items: list[Rule | Setting] = [*options.rules, *options.settings]
        for item in sorted(items, key=lambda x: x.lineno):
            spec = item.feature
            if (
                spec is not None
                and spec.key
                and spec.name in pools
                and not any(spec.matches(line) for line in pools[spec.name])
            ):
                self.warnings.append(
                    f"{options.path}:{item.lineno}: no license line of {spec.name} has "
                    f"{spec.key}={spec.value}; the line has no effect"
                )
        excludes = [(r, compiler.identity(r.who)) for r in options.rules if r.keyword == "EXCLUDE"]
        includes = [(r, compiler.identity(r.who)) for r in options.rules if r.keyword == "INCLUDE"]
        reserves = [(r, compiler.identity(r.who)) for r in options.rules if r.keyword == "RESERVE"]
        maxes = [limit for r in options.rules if r.keyword == "MAX" for limit in compiler.maxes(r)]
        for line in lines:
            included = tuple(i for r, i in includes if r.applies_to(line))
            self.lines[line.id] = LinePolicy(
                excludes=tuple(i for r, i in excludes if r.applies_to(line)),
                includes=included if included else None,
                reserve_members=tuple(i for r, i in reserves if r.applies_to(line)),
                maxes=tuple(m for m in maxes if m.rule.applies_to(line)),
                timeout=_setting(options.settings, "TIMEOUT", line),
                linger=_setting(options.settings, "LINGER", line) or 0,
                max_borrow_hours=_setting(options.settings, "MAX_BORROW_HOURS", line),
            )
        for rule, identity in reserves:
            self._reserve(rule, identity, pools.get(rule.feature.name, ()) if rule.feature else ())
        for policy in self.lines.values():
            policy.reservations.sort(key=lambda r: (r.identity.rank, r.rule.lineno))

    def _reserve(self, rule: Rule, identity: Identity, lines: Sequence[FeatureLine]) -> None:
        """Put the rule's seats on the counted lines it names, in the engine's
        order, floating lines first (a node-locked or named line serves few)."""
        assert rule.feature is not None and self.options is not None
        wanted = rule.count
        placed: list[Reservation] = []
        candidates = sorted(
            (line for line in lines if rule.applies_to(line) and line.seats is not None),
            key=lambda line: line.type != "floating",
        )
        for line in candidates:
            if wanted == 0:
                break
            policy = self.lines[line.id]
            taken = sum(r.cap for r in policy.reservations)
            cap = min(wanted, (line.seats or 0) - taken)
            if cap > 0:
                reservation = Reservation(rule, identity, cap)
                policy.reservations.append(reservation)
                placed.append(reservation)
                wanted -= cap
        if lines and wanted:
            where = f"{self.options.path}:{rule.lineno}"
            done = rule.count - wanted
            self.warnings.append(
                f"{where}: RESERVE {rule.count} {rule.feature} {identity.label}: only {done} "
                f"counted seat{'s' if done != 1 else ''} left to reserve"
            )
        self._reservations.setdefault(rule.feature.name, []).append((rule, placed))

    def line(self, line_id: str) -> LinePolicy | None:
        return self.lines.get(line_id)

    def reservations(self, name: str) -> list[dict[str, Any]]:
        """The RESERVE rules of a feature with the seats they hold, in file order."""
        return [
            {
                "count": sum(r.cap for r in placed),
                "type": rule.who.type,
                "name": rule.who.name,
                "in_use": sum(r.used for r in placed),
            }
            for rule, placed in self._reservations.get(name, [])
        ]


def _setting(settings: Iterable[Setting], keyword: str, line: FeatureLine) -> int | None:
    """The value for ``line``: a qualified feature beats a plain one beats ...ALL;
    among equals the last line of the file wins (FlexLM)."""
    best: tuple[int, int] | None = None
    value = None
    for setting in settings:
        if setting.keyword != keyword or not setting.applies_to(line):
            continue
        rank = 0 if setting.feature is None else 2 if setting.feature.key else 1
        if best is None or (rank, setting.lineno) >= best:
            best, value = (rank, setting.lineno), setting.value
    return value


class _Compiler:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.fold = options.group_case_insensitive

    def identity(self, who: Who) -> Identity:
        name = who.name
        kind = who.type
        matches: Matcher
        rank = (0, 1)
        if kind == "USER":
            matches = _always if name == ALL_USERS else (lambda c: c.user == name)
        elif kind == "GROUP":
            members = self.options.groups[name]
            rank = (1, len(members))
            if self.fold:
                folded = frozenset(m.casefold() for m in members)
                matches = lambda c: c.user.casefold() in folded  # noqa: E731
            else:
                exact = frozenset(members)
                matches = lambda c: c.user in exact  # noqa: E731
        elif kind == "HOST":
            matches = _host(name)
            rank = (2, 0) if "*" in name else rank
        elif kind == "HOST_GROUP":
            hosts = [_host(h) for h in self.options.host_groups[name]]
            matches = lambda c: any(m(c) for m in hosts)  # noqa: E731
            rank = (1, len(hosts))
        elif kind == "INTERNET":
            pattern = internet_pattern(name)
            matches = lambda c: pattern.matches(c.address)  # noqa: E731
            single = pattern.network is not None and pattern.network.num_addresses == 1
            rank = rank if single else (2, 0)
        elif kind == "DISPLAY":
            matches = lambda c: c.display == name  # noqa: E731
        else:  # PROJECT
            matches = lambda c: c.project == name  # noqa: E731
        return Identity(who, matches, rank)

    def maxes(self, rule: Rule) -> list[MaxLimit]:
        if rule.who == Who("GROUP", ALL_GROUPS):
            return [
                MaxLimit(rule, self.identity(Who("GROUP", g)), per_user=False)
                for g in self.options.groups
            ]
        return [MaxLimit(rule, self.identity(rule.who), per_user=rule.who.name == ALL_USERS)]


def _always(client: Client) -> bool:
    return True


def _host(pattern: str) -> Matcher:
    """A host name (any case), a client address, or either with ``*`` wildcards."""
    if "*" not in pattern:
        lower = pattern.lower()
        return lambda c: c.host.lower() == lower or _plain_address(c.address) == lower
    regex = re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.IGNORECASE)
    return lambda c: bool(regex.fullmatch(c.host) or regex.fullmatch(_plain_address(c.address)))


def _plain_address(address: str) -> str:
    """``::ffff:10.1.2.3`` (IPv4 on a dual-stack socket) → ``10.1.2.3``."""
    return address[7:] if address[:7].lower() == "::ffff:" else address


def _person(client: Client) -> str:
    return f"user {client.user} on {client.host}" if client.host else f"user {client.user}"
