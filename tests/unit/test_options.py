"""The options file: parsing (one-line errors) and every rule enforced by the pure engine."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path
from textwrap import dedent

import pytest

from netmap_lm import reasons
from netmap_lm.engine.seats import CheckoutRequest, Denial, Lease, SeatEngine
from netmap_lm.licensing.licensefile import FeatureLine
from netmap_lm.licensing.options import (
    KEYWORDS,
    MAX_REPORTED,
    FeatureSpec,
    Options,
    OptionsError,
    Rule,
    Who,
    parse_options,
    read_options,
)

TODAY = date(2026, 11, 28)
_ids = itertools.count()


def line(
    name: str = "netmap",
    seats: int | None = 4,
    *,
    version: str = "5.0",
    id: str | None = None,
    kind: str = "floating",
    **extra: object,
) -> FeatureLine:
    return FeatureLine(
        name=name,
        version=version,
        seats=seats,
        type=kind,
        start=None,
        expires=None,
        id=id or f"{name}-{version}-{seats}",
        text="",
        lineno=1,
        **extra,
    )  # type: ignore[arg-type]


def opts(text: str) -> Options:
    return parse_options(dedent(text), "site.opt")


def engine(*lines: FeatureLine, options: str = "", timeout: float = 10.0) -> SeatEngine:
    return SeatEngine(
        lines or (line(),), lease_timeout=timeout, options=opts(options) if options else None
    )


def take(
    e: SeatEngine,
    user: str = "ann",
    host: str = "ws1",
    *,
    feature: str = "netmap",
    version: str = "5.0",
    now: float = 0.0,
    **fields: object,
) -> Lease | Denial:
    request = CheckoutRequest(feature, version, user, host, **fields)  # type: ignore[arg-type]
    return e.checkout(
        request, lease_id=f"lease{next(_ids)}", key=b"k" * 32, now=now, wall_ms=0, today=TODAY
    )


def granted(result: object) -> Lease:
    assert isinstance(result, Lease), result
    return result


def refused(result: object, reason: str) -> str:
    assert isinstance(result, Denial), result
    assert result.reason == reason, result
    return result.message


def error(text: str) -> str:
    with pytest.raises(OptionsError) as info:
        opts(text)
    return str(info.value)


# -- parsing --------------------------------------------------------------------------------


def test_a_full_file_parses():
    o = opts(r"""
        # Engineering gets netmap; contractors do not.
        GROUP eng ann bob
        GROUP eng carl          # several GROUP lines of one name add up
        HOST_GROUP lab lab1 lab2 \
                   lab3
        INCLUDE netmap GROUP eng
        INCLUDEALL USER root
        EXCLUDE netmap:VERSION=6.0 HOST_GROUP lab
        EXCLUDEALL INTERNET 192.168.66.*
        RESERVE 2 "netmap VERSION=5.0" USER bob
        MAX 3 netmap GROUP eng
        MAX 1 netmap USER ALL_USERS
        TIMEOUT netmap 900
        TIMEOUTALL 3600
        LINGER netmap 60
        MAX_BORROW_HOURS netmap 24
        include netmap project apollo
    """)
    assert o.groups == {"eng": ("ann", "bob", "carl")}
    assert o.host_groups == {"lab": ("lab1", "lab2", "lab3")}
    assert o.rules[0] == Rule("INCLUDE", FeatureSpec("netmap"), Who("GROUP", "eng"), 0, 7)
    assert o.rules[1] == Rule("INCLUDE", None, Who("USER", "root"), 0, 8)
    assert o.rules[2].feature == FeatureSpec("netmap", "VERSION", "6.0")
    assert o.rules[3] == Rule("EXCLUDE", None, Who("INTERNET", "192.168.66.*"), 0, 10)
    assert o.rules[4] == Rule(
        "RESERVE", FeatureSpec("netmap", "VERSION", "5.0"), Who("USER", "bob"), 2, 11
    )
    assert o.rules[-1] == Rule("INCLUDE", FeatureSpec("netmap"), Who("PROJECT", "apollo"), 0, 18)
    assert [(s.keyword, s.feature, s.value) for s in o.settings] == [
        ("TIMEOUT", FeatureSpec("netmap"), 900),
        ("TIMEOUT", None, 3600),
        ("LINGER", FeatureSpec("netmap"), 60),
        ("MAX_BORROW_HOURS", FeatureSpec("netmap"), 24),
    ]
    assert {x.feature.name for x in [*o.rules, *o.settings] if x.feature} == {"netmap"}


def test_an_empty_file_is_no_rules():
    assert opts("\n# nothing yet\n\n") == Options(path="site.opt")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "RESERV 1 netmap USER bob",
            "site.opt:1: unknown keyword 'RESERV'; expected one of " + ", ".join(KEYWORDS),
        ),
        ("NOLOG QUEUED", "site.opt:1: NOLOG is a FlexLM option netmap_lm does not implement"),
        (
            "EXCLUDE netmap USR bob",
            "site.opt:1: EXCLUDE: 'USR' is not a type; expected one of "
            "USER, HOST, DISPLAY, GROUP, HOST_GROUP, INTERNET, PROJECT",
        ),
        ("EXCLUDE netmap USER", "site.opt:1: EXCLUDE: type USER needs name"),
        ("EXCLUDE netmap USER bob carl", "site.opt:1: EXCLUDE: type USER takes one name"),
        ("INCLUDE", "site.opt:1: INCLUDE needs a feature: INCLUDE feature[:KEY=value] type name"),
        ("INCLUDEALL", "site.opt:1: INCLUDEALL needs a type"),
        (
            "RESERVE two netmap USER bob",
            "site.opt:1: RESERVE count 'two' must be a whole number "
            "from 1 to 10000000: RESERVE count feature[:KEY=value] type name",
        ),
        ("RESERVE 0 netmap USER bob", "RESERVE count '0' must be a whole number from 1"),
        ("MAX 1 net/map USER bob", "site.opt:1: MAX: 'net/map' is not a feature name"),
        (
            "MAX 1 netmap:COLOR=red USER bob",
            "site.opt:1: MAX: feature 'netmap:COLOR=red': after "
            "':' expected KEY=value with KEY one of VERSION, ID, HOSTID, EXPDATE",
        ),
        ("MAX 1 netmap:VERSION=x USER bob", "site.opt:1: MAX: feature 'netmap:VERSION=x': version"),
        (
            "INCLUDE netmap GROUP eng",
            "site.opt:1: INCLUDE: GROUP 'eng' is not defined; add a line 'GROUP eng user ...'",
        ),
        ("EXCLUDE netmap HOST_GROUP lab", "HOST_GROUP 'lab' is not defined"),
        (
            "EXCLUDE netmap INTERNET 10.0.0.300",
            "site.opt:1: EXCLUDE: INTERNET '10.0.0.300': "
            "expected an "
            "address (10.1.2.3), a wildcard (192.168.1.*) or a CIDR network (10.0.0.0/8)",
        ),
        ("EXCLUDE netmap INTERNET 10.*", "INTERNET '10.*': expected an address"),
        (
            "EXCLUDE netmap HOST bad/host",
            "site.opt:1: EXCLUDE: HOST 'bad/host' is not a host "
            "name, address or wildcard like *.lab.example",
        ),
        ("HOST_GROUP lab ok bad/host", "site.opt:1: HOST_GROUP: HOST 'bad/host' is not a host"),
        ("EXCLUDE netmap USER ALL_USERS", "USER ALL_USERS is only for MAX"),
        ("GROUP eng", "site.opt:1: GROUP needs a name and at least one user: GROUP name user"),
        ("HOST_GROUP lab", "HOST_GROUP needs a name and at least one host"),
        ("TIMEOUT netmap 0", "site.opt:1: TIMEOUT seconds '0' must be a whole number from 1"),
        (
            "TIMEOUT netmap",
            "site.opt:1: TIMEOUT needs one number of seconds: TIMEOUT feature[:KEY=value] seconds",
        ),
        ("TIMEOUTALL 1.5", "TIMEOUTALL seconds '1.5' must be a whole number"),
        ("LINGER netmap 90000", "LINGER seconds '90000' must be a whole number from 0 to 86400"),
        ("MAX_BORROW_HOURS netmap -1", "MAX_BORROW_HOURS hours '-1' must be a whole number"),
        ("GROUPCASEINSENSITIVE maybe", "expected GROUPCASEINSENSITIVE ON|OFF"),
        ('EXCLUDE "netmap USER bob', 'site.opt:1: a "quoted" argument is not closed'),
    ],
)
def test_a_bad_line_is_one_error_naming_file_line_and_what_was_expected(text, expected):
    message = error(text)
    assert message.startswith("site.opt:1: "), message
    assert expected in message, message
    assert "\n" not in message


def test_the_error_names_the_right_line_even_after_continuations():
    text = "GROUP eng ann \\\n  bob\n\n# comment\nMAX 1 netmap GROUP eng\nMAX x netmap USER bob\n"
    assert error(text).startswith("site.opt:6: MAX count 'x'")
    # A group used before it is defined is fine; the error for an undefined one
    # points at the line that names it.
    assert opts("INCLUDE netmap GROUP eng\nGROUP eng ann\n").rules[0].who == Who("GROUP", "eng")
    assert error("GROUP eng ann\n\nMAX 1 netmap GROUP qa\n").startswith("site.opt:3:")


def test_every_bad_line_is_named_at_once_in_file_order():
    text = """\
    GROUP eng ann bob
    BOGUS netmap
    MAX 2 netmap GROUP eng
    TIMEOUT netmap soon
    INCLUDE netmap GROUP qa
    MAX many netmap USER ann
    """
    with pytest.raises(OptionsError) as info:
        opts(text)
    # The undefined group (found after the last line was read) is listed in its place.
    assert [n for n, _ in info.value.problems] == [2, 4, 5, 6]
    assert (info.value.lineno, info.value.message) == info.value.problems[0]
    shown = str(info.value).splitlines()
    assert [s.split(":")[1] for s in shown] == ["2", "4", "5", "6"]
    assert shown[0].startswith("site.opt:2: unknown keyword 'BOGUS'")
    assert "TIMEOUT" in shown[1] and "'qa' is not defined" in shown[2]
    assert shown[3].startswith("site.opt:6: MAX")


def test_a_rule_naming_a_group_whose_own_line_is_bad_is_not_a_second_problem():
    with pytest.raises(OptionsError) as info:
        opts("HOST_GROUP labs lab1 bad/host\nINCLUDE netmap HOST_GROUP labs\n")
    assert [n for n, _ in info.value.problems] == [1]
    # A group defined well on another line is a group; only the bad line is named.
    with pytest.raises(OptionsError) as info:
        opts("GROUP eng\nGROUP eng ann\nMAX 1 netmap GROUP eng\n")
    assert [n for n, _ in info.value.problems] == [1]


def test_a_file_of_garbage_lists_the_first_problems_and_counts_the_rest():
    with pytest.raises(OptionsError) as info:
        opts("".join(f"NONSENSE{i}\n" for i in range(1, 31)))
    assert len(info.value.problems) == 30
    shown = str(info.value).splitlines()
    assert len(shown) == MAX_REPORTED + 1
    assert shown[MAX_REPORTED - 1].startswith(f"site.opt:{MAX_REPORTED}: unknown keyword")
    left = 30 - MAX_REPORTED
    assert shown[-1] == f"site.opt: … and {left} more problems after line {MAX_REPORTED}"


def test_read_options_names_the_file(tmp_path: Path):
    path = tmp_path / "netmap.opt"
    with pytest.raises(OptionsError, match=r"netmap\.opt: cannot read options file"):
        read_options(path)
    path.write_text("MAX 2 netmap USER bob\nBOGUS\n")
    with pytest.raises(OptionsError) as info:
        read_options(path)
    assert str(info.value).startswith(f"{path}:2: unknown keyword 'BOGUS'")
    assert info.value.lineno == 2
    path.write_bytes(b"GROUP eng \xff\n")
    with pytest.raises(OptionsError, match="not UTF-8"):
        read_options(path)
    path.write_text("MAX 2 netmap USER bob\n")
    assert read_options(path).rules[0].count == 2


@pytest.mark.parametrize(
    "number",
    [
        "\u00b2",  # superscript two: str.isdigit() says yes, int() refuses it
        "\u0663\u0660",  # Arabic-Indic 30: int() would read it, the file format does not
        "\uff11\uff10",  # full-width 10
        "1" * 5000,  # more digits than int() reads
    ],
)
@pytest.mark.parametrize(
    "rule", ["TIMEOUTALL {}", "TIMEOUT netmap {}", "LINGER netmap {}", "MAX {} netmap USER bob"]
)
def test_a_number_not_in_ascii_digits_is_an_options_error_not_a_crash(
    tmp_path: Path, rule: str, number: str
):
    path = tmp_path / "site.opt"
    path.write_text("# counts and seconds\n" + rule.format(number) + "\n", encoding="utf-8")
    with pytest.raises(OptionsError) as info:
        read_options(path)
    assert str(info.value).startswith(f"{path}:2: "), info.value
    assert "must be a whole number from" in str(info.value)


def test_leading_zeros_still_read_as_the_number():
    assert opts("TIMEOUTALL 0060\n").settings[0].value == 60
    assert opts("MAX " + "0" * 5000 + "2 netmap USER bob\n").rules[0].count == 2


def test_an_unknown_feature_in_a_different_case_is_named_as_the_near_one():
    e = engine(options="MAX 1 NetMap USER bob\n")
    assert e.warnings == [
        "site.opt:1: MAX names feature 'NetMap', which the license does not have (did you mean "
        "'netmap'?); the line has no effect"
    ]


def test_unknown_features_are_warnings_not_errors():
    e = engine(
        options="""
        MAX 2 netmap USER bob
        RESERVE 1 netmapp USER bob
        TIMEOUT other 60
        INCLUDE netmap:VERSION=9.0 USER bob
    """
    )
    assert e.warnings == [
        "site.opt:3: RESERVE names feature 'netmapp', which the license does not have (did you "
        "mean 'netmap'?); the line has no effect",
        "site.opt:4: TIMEOUT names feature 'other', which the license does not have; the line "
        "has no effect",
        "site.opt:5: no license line of netmap has VERSION=9.0; the line has no effect",
    ]


# -- INCLUDE / EXCLUDE and the identity types ------------------------------------------------


def test_exclude_refuses_only_the_excluded():
    e = engine(options="EXCLUDE netmap USER mallory")
    message = refused(take(e, "mallory"), reasons.NOT_AUTHORIZED)
    assert message == (
        "user mallory on ws1 may not use netmap: excluded by the options file "
        "(EXCLUDE USER mallory)"
    )
    granted(take(e, "ann"))


def test_excludeall_covers_every_feature():
    e = engine(line("netmap"), line("viewer"), options="EXCLUDEALL HOST kiosk")
    refused(take(e, host="kiosk"), reasons.NOT_AUTHORIZED)
    refused(take(e, host="kiosk", feature="viewer"), reasons.NOT_AUTHORIZED)
    granted(take(e, host="ws1", feature="viewer"))


def test_an_include_list_shuts_out_everybody_not_on_it():
    e = engine(
        line("netmap"),
        line("viewer"),
        options="""
        GROUP eng ann bob
        INCLUDE netmap GROUP eng
    """,
    )
    granted(take(e, "ann"))
    granted(take(e, "bob"))
    message = refused(take(e, "carl"), reasons.NOT_AUTHORIZED)
    assert "not on its INCLUDE list" in message
    granted(take(e, "carl", feature="viewer"))  # no list for viewer: everybody


def test_includeall_is_an_include_list_for_every_feature_and_adds_to_include():
    e = engine(
        line("netmap"),
        line("viewer"),
        options="""
        INCLUDEALL USER root
        INCLUDE netmap USER ann
    """,
    )
    granted(take(e, "root", feature="viewer"))
    granted(take(e, "root"))
    granted(take(e, "ann"))
    refused(take(e, "ann", feature="viewer"), reasons.NOT_AUTHORIZED)
    refused(take(e, "bob"), reasons.NOT_AUTHORIZED)


def test_a_qualified_feature_applies_to_its_lines_only():
    e = engine(
        line(version="5.0", id="v5"),
        line(version="6.0", id="v6"),
        options="INCLUDE netmap:VERSION=6.0 USER ann",
    )
    assert granted(take(e, "bob", version="5.0")).line_id == "v5"
    refused(take(e, "bob", version="6.0"), reasons.NOT_AUTHORIZED)
    assert granted(take(e, "ann", version="6.0")).line_id == "v6"
    e = engine(
        line(version="5.0", id="v5"),
        line(version="6.0", id="v6"),
        options="EXCLUDE netmap:ID=v5 USER bob",
    )
    assert granted(take(e, "bob", version="5.0")).line_id == "v6"  # v5 refused, v6 serves


@pytest.mark.parametrize(
    ("rule", "inside", "outside"),
    [
        ("USER bob", {"user": "bob"}, {"user": "Bob"}),
        ("HOST lab1", {"host": "LAB1"}, {"host": "lab10"}),  # host names: any case
        ("HOST *.lab.example", {"host": "ws7.lab.example"}, {"host": "ws7.office.example"}),
        ("HOST 10.1.2.3", {"address": "10.1.2.3"}, {"address": "10.1.2.4"}),  # HOST by address
        ("HOST 10.1.2.3", {"address": "::ffff:10.1.2.3"}, {"address": "::ffff:10.1.2.4"}),
        ("HOST 10.1.*", {"address": "10.1.9.9"}, {"address": "10.2.9.9"}),
        ("HOST *", {"host": "anything"}, None),
        ("HOST_GROUP lab", {"host": "lab2"}, {"host": "lab3"}),
        ("HOST_GROUP lab", {"host": "x", "address": "172.16.0.9"}, {"address": "172.17.0.9"}),
        ("GROUP eng", {"user": "ann"}, {"user": "ANN"}),
        ("INTERNET 192.168.1.*", {"address": "192.168.1.77"}, {"address": "192.168.2.77"}),
        ("INTERNET 192.*.*.1", {"address": "192.10.20.1"}, {"address": "192.10.20.2"}),
        ("INTERNET 10.0.0.0/8", {"address": "10.200.3.4"}, {"address": "11.0.0.1"}),
        ("INTERNET 10.0.0.0/8", {"address": "::ffff:10.0.0.1"}, {"address": ""}),
        ("INTERNET 2001:db8::/32", {"address": "2001:db8::5"}, {"address": "2001:db9::5"}),
        ("INTERNET 10.9.8.7", {"address": "10.9.8.7"}, {"address": "not an address"}),
        ("PROJECT apollo", {"project": "apollo"}, {"project": "gemini"}),
        ("DISPLAY :0", {"display": ":0"}, {"display": ":1"}),
    ],
)
def test_every_identity_type(rule, inside, outside):
    e = engine(
        options=f"""
        GROUP eng ann bob
        HOST_GROUP lab lab1 lab2 172.16.*
        EXCLUDE netmap {rule}
    """
    )
    base = {"user": "zed", "host": "ws1"}
    request = {**base, **inside}
    refused(take(e, request.pop("user"), request.pop("host"), **request), reasons.NOT_AUTHORIZED)
    if outside is not None:
        request = {**base, **outside}
        granted(take(e, request.pop("user"), request.pop("host"), **request))


def test_groupcaseinsensitive():
    e = engine(options="GROUPCASEINSENSITIVE ON\nGROUP eng Ann\nEXCLUDE netmap GROUP eng\n")
    refused(take(e, "ANN"), reasons.NOT_AUTHORIZED)
    refused(take(e, "ann"), reasons.NOT_AUTHORIZED)


# -- RESERVE ---------------------------------------------------------------------------------


def test_reserved_seats_go_to_members_only():
    e = engine(line(seats=3), options="RESERVE 2 netmap USER bob")
    granted(take(e, "ann"))
    message = refused(take(e, "carl"), reasons.SEATS_EXHAUSTED)
    assert message == (
        "all 3 seats of netmap are in use or reserved; the free ones are reserved for USER bob (2)"
    )
    granted(take(e, "bob"))
    granted(take(e, "bob"))
    refused(take(e, "bob"), reasons.SEATS_EXHAUSTED)
    assert e.reservations("netmap") == [{"count": 2, "type": "USER", "name": "bob", "in_use": 2}]


def test_a_member_takes_a_reserved_seat_first():
    e = engine(line(seats=3), options="GROUP eng ann bob\nRESERVE 1 netmap GROUP eng")
    granted(take(e, "ann"))  # the reserved one
    assert e.reservations("netmap")[0]["in_use"] == 1
    granted(take(e, "carl"))
    granted(take(e, "dan"))  # two unreserved seats were left for non-members
    refused(take(e, "eve"), reasons.SEATS_EXHAUSTED)


def test_a_freed_reserved_seat_is_refilled_by_a_member_on_an_unreserved_one():
    e = engine(line(seats=3), options="RESERVE 1 netmap USER bob")
    first = granted(take(e, "bob"))  # reserved
    granted(take(e, "bob"))  # unreserved: the reservation is full
    granted(take(e, "ann"))
    e.checkin(first.id)
    # bob's other lease moved into the reserved seat, so an unreserved one is free.
    granted(take(e, "carl"))
    assert e.reservations("netmap")[0]["in_use"] == 1


def test_the_narrowest_reservation_is_used_first():
    e = engine(
        line(seats=2),
        options="""
        GROUP eng ann bob
        RESERVE 1 netmap GROUP eng
        RESERVE 1 netmap USER bob
    """,
    )
    granted(take(e, "bob"))  # takes USER bob's seat, leaving eng's for ann
    granted(take(e, "ann"))
    assert [r["in_use"] for r in e.reservations("netmap")] == [1, 1]


def test_a_reservation_larger_than_the_seats_is_cut_with_a_warning():
    e = engine(
        line(seats=2),
        line("viewer", seats=None),
        options="""
        RESERVE 5 netmap USER bob
        RESERVE 1 viewer USER bob
    """,
    )
    assert e.warnings == [
        "site.opt:2: RESERVE 5 netmap USER bob: only 2 counted seats left to reserve",
        "site.opt:3: RESERVE 1 viewer USER bob: only 0 counted seats left to reserve",
    ]
    assert e.reservations("netmap")[0]["count"] == 2
    granted(take(e, "ann", feature="viewer"))  # uncounted: nothing to reserve


def test_a_reservation_fills_floating_lines_in_the_engine_order():
    e = engine(
        line(seats=1, version="5.0", id="v5"),
        line(seats=1, version="6.0", id="v6"),
        options="RESERVE 1 netmap:VERSION=6.0 USER bob",
    )
    assert granted(take(e, "ann", version="5.0")).line_id == "v5"
    refused(take(e, "ann", version="5.0"), reasons.SEATS_EXHAUSTED)  # v6's seat is bob's
    assert granted(take(e, "bob", version="6.0")).line_id == "v6"


# -- MAX -------------------------------------------------------------------------------------


def test_max_caps_a_group_counting_its_members_together():
    e = engine(line(seats=10), options="GROUP eng ann bob\nMAX 2 netmap GROUP eng")
    granted(take(e, "ann"))
    granted(take(e, "bob"))
    message = refused(take(e, "ann"), reasons.SEATS_EXHAUSTED)
    assert message == "netmap: MAX 2 for GROUP eng reached"
    granted(take(e, "carl"))


def test_max_frees_up_when_a_seat_is_returned():
    e = engine(options="MAX 1 netmap USER ann")
    first = granted(take(e, "ann"))
    refused(take(e, "ann", host="ws2"), reasons.SEATS_EXHAUSTED)
    e.checkin(first.id)
    granted(take(e, "ann", host="ws2"))


def test_max_all_users_is_per_user_and_all_groups_per_group():
    e = engine(line(seats=10), options="MAX 1 netmap USER ALL_USERS")
    granted(take(e, "ann"))
    granted(take(e, "bob"))
    assert refused(take(e, "ann"), reasons.SEATS_EXHAUSTED) == (
        "netmap: MAX 1 per user (USER ALL_USERS) reached for ann"
    )
    e = engine(
        line(seats=10),
        options="""
        GROUP eng ann bob
        GROUP qa carl
        MAX 1 netmap GROUP ALL_GROUPS
    """,
    )
    granted(take(e, "ann"))
    granted(take(e, "carl"))
    refused(take(e, "bob"), reasons.SEATS_EXHAUSTED)
    refused(take(e, "carl"), reasons.SEATS_EXHAUSTED)
    granted(take(e, "dan"))  # in no group


def test_max_zero_refuses_every_seat():
    e = engine(options="MAX 0 netmap HOST kiosk")
    assert "MAX 0 for HOST kiosk reached" in refused(take(e, host="kiosk"), reasons.SEATS_EXHAUSTED)


# -- precedence: EXCLUDE > RESERVE > MAX > INCLUDE --------------------------------------------


def test_exclude_beats_reserve():
    e = engine(options="RESERVE 1 netmap USER bob\nEXCLUDE netmap USER bob")
    refused(take(e, "bob"), reasons.NOT_AUTHORIZED)


def test_exclude_beats_include():
    e = engine(options="INCLUDE netmap USER bob\nEXCLUDEALL USER bob")
    refused(take(e, "bob"), reasons.NOT_AUTHORIZED)


def test_reserve_beats_max():
    e = engine(line(seats=5), options="RESERVE 2 netmap USER bob\nMAX 1 netmap USER bob")
    granted(take(e, "bob"))
    granted(take(e, "bob"))  # the second reserved seat: a reservation is a promise
    assert "MAX 1 for USER bob reached" in refused(take(e, "bob"), reasons.SEATS_EXHAUSTED)


def test_max_counts_reserved_seats_when_no_reservation_is_left():
    e = engine(
        line(seats=5),
        options="GROUP eng ann bob\nRESERVE 1 netmap GROUP eng\nMAX 2 netmap GROUP eng",
    )
    granted(take(e, "ann"))  # reserved
    granted(take(e, "bob"))  # unreserved, within MAX
    refused(take(e, "bob"), reasons.SEATS_EXHAUSTED)  # 2 held, reserved one included


def test_reserve_beats_include_a_member_counts_as_included():
    e = engine(options="INCLUDE netmap USER ann\nRESERVE 1 netmap USER bob")
    granted(take(e, "bob"))
    granted(take(e, "ann"))
    refused(take(e, "carl"), reasons.NOT_AUTHORIZED)


def test_max_beats_include():
    e = engine(options="INCLUDE netmap USER ann\nMAX 1 netmap USER ann")
    granted(take(e, "ann"))
    refused(take(e, "ann"), reasons.SEATS_EXHAUSTED)


def test_not_authorized_is_reported_before_seats():
    e = engine(line(seats=1), options="EXCLUDE netmap USER bob")
    granted(take(e, "ann"))
    refused(take(e, "bob"), reasons.NOT_AUTHORIZED)


# -- TIMEOUT, LINGER, MAX_BORROW_HOURS ----------------------------------------------------------


def test_timeout_replaces_the_server_timeout_per_feature():
    e = engine(
        line("netmap"),
        line("viewer"),
        line("other"),
        timeout=100,
        options="""
        TIMEOUT netmap 20
        TIMEOUTALL 50
    """,
    )
    assert e.lease_timeout_for("netmap") == 20
    assert e.lease_timeout_for("viewer") == 50
    assert e.lease_timeout_for("nonesuch") == 100
    a = granted(take(e, feature="netmap"))
    v = granted(take(e, feature="viewer"))
    assert [x.id for x in e.expire(21.0)] == [a.id]
    assert [x.id for x in e.expire(51.0)] == [v.id]
    assert a.end_reason == v.end_reason == "timeout"
    # Without options, the server's.
    assert engine(timeout=100).lease_timeout_for("netmap") == 100


def test_a_qualified_timeout_beats_a_plain_one_and_the_last_line_wins():
    e = engine(
        line(version="5.0", id="v5"),
        line(version="6.0", id="v6"),
        options="""
        TIMEOUT netmap:VERSION=6.0 30
        TIMEOUT netmap 40
        TIMEOUT netmap 45
    """,
    )
    assert e.lease_timeout_for("netmap", "v6") == 30
    assert e.lease_timeout_for("netmap", "v5") == 45
    assert e.lease_timeout_for("netmap") == 30  # the shortest, for the grant


def test_linger_option_raises_the_line_linger_but_never_lowers_it():
    e = engine(
        line("a", linger_seconds=10),
        line("b", linger_seconds=100),
        options="LINGER a 60\nLINGER b 5",
    )
    assert e.linger_for("a-5.0-4") == 60
    assert e.linger_for("b-5.0-4") == 100
    lease = granted(take(e, feature="a"))
    e.checkin(lease.id, now=0.0)
    assert e.in_use("a") == 1
    assert e.expire(59.0) == []
    assert [x.end_reason for x in e.expire(60.0)] == ["linger"]
    assert e.in_use("a") == 0


def test_max_borrow_hours_lowers_borrow_but_never_raises_it():
    e = engine(
        line("a", borrow_hours=48),
        line("b", borrow_hours=8),
        line("c"),
        options="MAX_BORROW_HOURS a 24\nMAX_BORROW_HOURS b 100\nMAX_BORROW_HOURS c 5",
    )
    assert e.borrow_hours_for("a-5.0-4") == 24
    assert e.borrow_hours_for("b-5.0-4") == 8
    assert "at most 24 hours (MAX_BORROW_HOURS in the options file); 25 requested" in refused(
        take(e, feature="a", borrow_hours=25), reasons.NOT_AUTHORIZED
    )
    granted(take(e, feature="a", borrow_hours=24))
    refused(take(e, feature="b", borrow_hours=9), reasons.NOT_AUTHORIZED)
    assert "no borrow=" in refused(take(e, feature="c", borrow_hours=1), reasons.NOT_AUTHORIZED)


# -- reread: held leases are kept ----------------------------------------------------------------


def test_a_reread_keeps_held_leases_even_when_new_rules_would_refuse_them():
    old = engine(line(seats=3))
    held = [granted(take(old, "mallory")), granted(take(old, "ann"))]
    new = engine(line(seats=3), options="EXCLUDE netmap USER mallory\nMAX 0 netmap USER ann")
    assert all(new.restore(x, now=None, today=TODAY) for x in held)
    assert new.in_use("netmap") == 2
    refused(take(new, "mallory"), reasons.NOT_AUTHORIZED)


def test_a_reread_does_not_put_a_held_lease_on_a_seat_reserved_for_others():
    old = engine(line(seats=2))
    held = [granted(take(old, "ann")), granted(take(old, "carl"))]
    new = engine(line(seats=2), options="RESERVE 1 netmap USER bob")
    assert new.restore(held[0], now=None, today=TODAY)  # oldest first: kept
    assert not new.restore(held[1], now=None, today=TODAY)  # the last seat is bob's
    granted(take(new, "bob"))


# -- docs/administration.md says what the code does ----------------------------------------

ADMIN_DOC = Path(__file__).resolve().parents[2] / "docs" / "administration.md"


def _doc_block(after: str) -> str:
    text = ADMIN_DOC.read_text(encoding="utf-8")
    start = text.index("```text\n", text.index(after)) + len("```text\n")
    return text[start : text.index("```", start)]


def test_the_documented_example_options_file_parses():
    o = parse_options(_doc_block("### 1.1 A complete example"), "netmap.opt")
    assert {r.keyword for r in o.rules} == {"INCLUDE", "EXCLUDE", "RESERVE", "MAX"}
    assert {s.keyword for s in o.settings} == {"TIMEOUT", "LINGER", "MAX_BORROW_HOURS"}
    assert o.groups["eng"] == ("ann", "bob", "carl", "dora")


def test_the_documented_worked_example_of_precedence():
    e = SeatEngine(
        [line(seats=5)],
        lease_timeout=10,
        options=parse_options(_doc_block("Worked example"), "netmap.opt"),
    )
    refused(take(e, "dan"), reasons.NOT_AUTHORIZED)
    granted(take(e, "carl"))
    refused(take(e, "bob"), reasons.NOT_AUTHORIZED)
    granted(take(e, "ann"))
    granted(take(e, "ann"))
    assert refused(take(e, "ann"), reasons.SEATS_EXHAUSTED) == "netmap: MAX 2 for GROUP eng reached"
    assert refused(take(e, "carl"), reasons.SEATS_EXHAUSTED) == (
        "all 5 seats of netmap are in use or reserved; the free ones are reserved for USER bob (2)"
    )


def test_every_keyword_and_type_is_documented():
    from netmap_lm.licensing.options import TYPES

    text = ADMIN_DOC.read_text(encoding="utf-8")
    for word in (*KEYWORDS, *TYPES):
        assert f"| `{word}` |" in text, f"docs/administration.md has no table row for {word}"
