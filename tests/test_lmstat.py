"""FlexLM ``lmstat`` compatibility (SPEC §7): ``netmap-lmutil``, ``netmap-lmstat``,
``netmap-lm status --lmstat``.

The layout is checked three ways:

* against real ``lmstat`` output written down in ``tests/data/lmstat/`` (sources
  in its README.md: the ARM knowledge article ka4037 sample of ``lmutil lmstat
  -a``, and fixtures of the Prometheus flexlm_exporter and of the Slurm
  license-manager agent);
* against the regular expressions of the tools that parse it, ported below
  with their repository and file named; the same expressions are first run on
  the real samples, which shows the port is faithful;
* end to end: a real server, seats held by LicenseClient, and the console
  scripts run the way monitoring tools run ``lmutil``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from netmap_lm import LicenseClient
from netmap_lm.cli import lmstat, lmstat_format
from netmap_lm.cli.lmstat_format import Probe, format_report, render
from netmap_lm.licensing import keys
from support import Kit, ServerProcess, free_port

DATA = Path(__file__).parent / "data" / "lmstat"
BIN = Path(sys.executable).parent
LMUTIL = BIN / "netmap-lmutil"
LMSTAT = BIN / "netmap-lmstat"

# -- Prometheus flexlm_exporter -------------------------------------------------------
# github.com/mjtrangoni/flexlm_exporter, collector/regexp.go (Go RE2, ported:
# [[:print:]] -> [\x20-\x7e], [[:graph:]] -> [\x21-\x7e]; re.ASCII because RE2's
# \w \d \s are ASCII).  How they are applied: collector/lmstat.go (parse functions
# emulated in exporter_parse below).
_A = re.ASCII
EXP_VERSION = re.compile(r"^lmstat (?P<version>v[\d\.]+) build (?P<build>\d+) (?P<arch>[\w]+)", _A)
EXP_SERVERS = re.compile(r"^License server status: (?P<servers>[\w,.@\-]+)", _A)
EXP_SERVER_STATUS = re.compile(
    r"(?P<fqdn>[\w\.\-]+): license server (?P<status>\w+)(?P<master>\s"
    r"\(MASTER\))? (?P<version>v[\d\.]+)$",
    _A,
)
EXP_VENDOR = re.compile(r"^\s+(?P<vendor>\w+): (?P<status>UP|DOWN) (?P<version>v[\d\.]+)$", _A)
EXP_FEATURE_USAGE = re.compile(
    r"^Users of (?P<name>.*):\s+\(Total of (?P<issued>\d+) \w+ issued\;\s+"
    r"Total of (?P<used>\d+) \w+ in use\)$",
    _A,
)
EXP_USER = re.compile(
    r"^\s+(?P<user>[\w\x20-\x7e]+) [\w\-\.]+ [\x20-\x7e]+ (?P<ver>\(v[\w\.]+\)) \([\w\-\.]+\/\d+ "
    r"\d+\)\, start (?P<since>\w+ \d+\/\d+ \d+\:\d+)(\,\s(?P<licenses>\d+)\s\w+|)"
    r"(\s+\(linger\:\s\d+\s\/\s\d+\))?"
    r"(\,\s+PID\:\s+\d+\s?)?$",
    _A,
)
EXP_USER_QUEUED = re.compile(
    r"^\s+(?P<user>[\w\x20-\x7e]+) [\w\-\.]+ [\x20-\x7e]+ [0-9.]+ (?P<ver>\(v[\w\.]+\)) "
    r"\([\w\-\.]+\/\d+ \d+\)\s+queued for (?P<licenses>\d+) license[s]?$",
    _A,
)
EXP_GROUP_RESERV = re.compile(
    r"^(\s+|)(?P<reservation>\d+)\s+\w+\s+for\s+(HOST_GROUP|GROUP)\s+(?P<group>\w+).*$", _A
)
EXP_HOST_RESERV = re.compile(
    r"^(\s+|)(?P<reservation>\d+)\s+\w+\s+for\s+(HOST)\s+(?P<host>\w+).*$", _A
)
EXP_NODELOCKED = re.compile(r"^Users of (?P<name>.*):\s+\(Uncounted, node-locked\)$", _A)
EXP_TYPE = re.compile(r"^\s+(?P<type>floating|uncounted nodelocked|nodelocked) license", _A)
EXP_FEATURE_EXP = re.compile(
    r"^(?P<feature>[\x21-\x7e]+)\s+(?P<version>[\d\.]+)\s+"
    r"(?P<licenses>\d+)\s+(?P<expires>[\w\-]+)\s+(?P<vendor>\w+)$",
    _A,
)
EXP_TIME = re.compile(r"^\w+ (?P<month>\d+)/(?P<day>\d+) (?P<time>\d+:\d+)$", _A)

# -- Slurm license-manager agent ------------------------------------------------------
# github.com/omnivector-solutions/license-manager, lm-agent/lm_agent/parsing/flexlm.py
# (it runs "lmutil lmstat -c PORT@HOST -f FEATURE": lm_agent/server_interfaces/flexlm.py)
HOSTWORD = r"[a-zA-Z0-9-]+"
HOSTNAME = rf"{HOSTWORD}(\.{HOSTWORD})*"
NONWS = r"\S+"
INT = r"\d+"
NONPAREN = r"[^() ]+"
MMDD = rf"{INT}/{INT}"
HHMM = rf"{INT}:{INT}"
FEATURE_NAME = r"[A-Za-z0-9\-_:]+"
SLURM_FEATURE = re.compile(
    rf"^Users of (?P<feature>{FEATURE_NAME}):  \(Total of (?P<total>{INT}) "
    rf"licenses issued;  Total of (?P<used>{INT}) license(?P<plural>s)? in use\)$"
)
SLURM_USAGE_1 = re.compile(
    rf"^\s+(?P<user>{NONWS}) (?P<user_host>{HOSTNAME}) (?P<tty>{NONWS}) "
    rf"\((?P<version>{NONPAREN})\) \((?P<license_host>{HOSTNAME})/(?P<license_port>{INT}) "
    rf"(?P<license_pid>{INT})\), start (?P<weekday>{NONWS}) (?P<date>{MMDD}) "
    rf"(?P<time>{HHMM}), (?P<tokens>{INT}) licenses$"
)
SLURM_USAGE_3 = re.compile(
    rf"^\s+(?P<user>{NONWS}) (?P<user_host>{HOSTNAME}) (?P<tty>{NONWS}) "
    rf"\(v(?P<version>{NONPAREN})\) \((?P<license_host>{HOSTNAME})/(?P<license_port>{INT}) "
    rf"(?P<license_pid>{INT})\), start (?P<weekday>{NONWS}) (?P<date>{MMDD}) (?P<time>{HHMM})$"
)
SLURM_USAGE = [SLURM_USAGE_1, SLURM_USAGE_3]  # the agent's lines 2, 4, 5 need feature= words


# -- the tools' logic around the expressions ----------------------------------------


def exporter_parse(text: str) -> dict[str, Any]:
    """What flexlm_exporter's collector/lmstat.go takes from ``lmstat -a`` text.

    Its reader (encoding/csv, comment '#') would misread lines that start with
    '"' or '#'; its server map is keyed by the first label of the header's
    hosts and a status line for a host not in the header dereferences nil.
    """
    servers: dict[str, dict[str, Any]] = {}
    vendors: dict[str, dict[str, Any]] = {}
    features: dict[str, dict[str, int]] = {}
    users: dict[str, Counter[str]] = {}
    reservations: dict[str, dict[str, int]] = {}
    name = ""
    for line in text.splitlines():
        assert not line.startswith(('"', "#")), line
        if m := EXP_SERVERS.match(line):
            for port_server in m["servers"].split(","):
                fqdn = port_server.split("@")[1].lower()
                servers[fqdn.split(".")[0]] = {"fqdn": fqdn, "port": port_server.split("@")[0]}
        elif m := EXP_SERVER_STATUS.search(line):
            key = m["fqdn"].split(".")[0].lower()
            assert key in servers, f"exporter would panic: {key!r} not in the header"
            servers[key].update(
                up=m["status"] == "UP", master=bool(m["master"]), version=m["version"]
            )
        if m := EXP_VENDOR.match(line):
            vendors[m["vendor"]] = {"up": m["status"] == "UP", "version": m["version"]}
        if m := EXP_FEATURE_USAGE.match(line):
            name = m["name"]
            features[name] = {"issued": int(m["issued"]), "used": int(m["used"])}
        elif m := EXP_USER.match(line):
            users.setdefault(name, Counter())[m["user"]] += int(m["licenses"] or 1)
            assert EXP_TIME.match(m["since"])
        elif m := EXP_GROUP_RESERV.match(line):
            reservations.setdefault(name, {})[m["group"]] = int(m["reservation"])
    return {
        "servers": servers,
        "vendors": vendors,
        "features": features,
        "users": users,
        "reservations": reservations,
    }


def slurm_parse(text: str) -> dict[str, Any]:
    """lm_agent.parsing.flexlm.parse: the last feature line, and every usage line."""
    parsed: dict[str, Any] = {}
    uses = []
    for line in text.splitlines():
        if m := SLURM_FEATURE.match(line):
            parsed = {
                "feature": m["feature"].lower(),
                "total": int(m["total"]),
                "used": int(m["used"]),
            }
            continue
        for rx in SLURM_USAGE:
            if u := rx.match(line):
                uses.append(
                    (u["user"].lower(), u["user_host"], int(u.groupdict().get("tokens") or 1))
                )
                break
    if parsed:
        parsed["uses"] = uses
    return parsed


OK, WARNING, CRITICAL = 0, 1, 2


def check_flexlm(text: str) -> tuple[int, list[str], list[str]]:
    """Nagios check_flexlm: github.com/monitoring-plugins/monitoring-plugins,
    plugins-scripts/check_flexlm.pl (it runs ``lmstat -c LICENSE_FILE``, no -a).
    Its names are Perl's greedy ``/^(.*):/``: for a down server, all up to the last ':'."""
    up: list[str] = []
    down: list[str] = []
    for line in text.splitlines():
        if re.match(r"^lmstat", line) or re.match(r"^Flexible", line):
            continue
        if re.match(r"^Vendor", line):
            break
        if re.search(r"license server ", line):
            line = re.sub(r"^\s*", "", line)
            who = re.match(r"^(.*):", line)
            (up if "UP" in line else down).append(who.group(1) if who else "")
    state = OK if not down else WARNING if up else CRITICAL
    return state, up, down


# -- the ported expressions read the real samples -----------------------------------


def sample(name: str) -> str:
    return (DATA / name).read_text()


def test_exporter_expressions_read_the_real_samples() -> None:
    arm = exporter_parse(sample("arm_ka4037_lmstat_a.txt"))
    assert arm["servers"] == {
        "myserver": {
            "fqdn": "myserver",
            "port": "8224",
            "up": True,
            "master": True,
            "version": "v10.8.8.0",
        }
    }
    assert arm["vendors"] == {"armlmd": {"up": True, "version": "v10.8.8.0"}}
    assert arm["features"]["rvd_arm"] == {"issued": 10, "used": 1}
    assert arm["users"] == {"rvd_arm": Counter({"ngnere": 1})}

    app1 = exporter_parse(sample("exporter_app1_excerpt.txt"))
    assert app1["servers"]["host2"]["master"] and not app1["servers"]["host3"]["master"]
    assert app1["features"]["feature12"] == {"issued": 1, "used": 0}
    assert app1["users"]["feature1"]["user1"] == 16
    assert app1["users"]["feature8"]["user17"] == 1
    assert app1["reservations"]["feature1"] == {"GROUP1": 48, "GROUP2": 8}

    down = exporter_parse(sample("exporter_server_down.txt"))
    assert down["servers"]["host2"]["up"] and "up" not in down["servers"]["host3"]
    win = exporter_parse(sample("exporter_server_up_win.txt"))
    assert win["servers"]["bvs15004"]["up"]
    assert EXP_VERSION.match(sample("exporter_lmstat_v.txt").splitlines()[1])
    info = sample("exporter_lmstat_i_excerpt.txt").splitlines()
    rows = [EXP_FEATURE_EXP.match(line) for line in info]
    assert [m["feature"] for m in rows if m] == ["feature1", "feature12", "feature15"]


def test_slurm_and_nagios_logic_read_the_real_samples() -> None:
    # Usage lines from lm-agent/tests/parsing/test_flexlm.py of the Slurm agent.
    assert SLURM_USAGE_1.match(
        "    user1 myserver.example.com /dev/tty (v62.2) (myserver.example.com/24200 12507), "
        "start Thu 10/29 8:09, 29 licenses"
    )
    assert SLURM_USAGE_3.match(
        "    user3 ER1234 SESOD5045 (v2023.0331) (alternative.server.com/29065 2639), "
        "start Fri 3/8 13:25"
    )
    arm = slurm_parse(sample("arm_ka4037_lmstat_a.txt"))
    assert arm["feature"] == "rvd_trace"  # the agent asks for one feature (-f) at a time
    assert arm["uses"] == [("ngnere", "clientpc", 1)]
    assert slurm_parse(sample("slurm_agent_down.txt")) == {}
    # check_flexlm on the samples: all up; one of three down; nothing answers.
    assert check_flexlm(sample("arm_ka4037_lmstat_a.txt"))[0] == OK
    state, up, down = check_flexlm(sample("exporter_server_down.txt"))
    assert (state, up, len(down)) == (WARNING, ["host1", "host2"], 1)
    assert check_flexlm(sample("slurm_agent_down.txt"))[0] == CRITICAL


# -- the formatter --------------------------------------------------------------------

NOW = datetime(2026, 11, 28, 9, 15, tzinfo=UTC).timestamp()  # a Saturday


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def lease(
    user: str,
    host: str,
    handle: int,
    display: str = "",
    version: str = "5.0",
    line: str = "netmap-1",
    minutes: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "lease": f"id{handle}",
        "handle": handle,
        "user": user,
        "host": host,
        "display": display,
        "pid": 100 + handle,
        "project": "",
        "version": version,
        "line": line,
        "granted_at": ms(datetime.fromtimestamp(NOW, UTC) - timedelta(minutes=minutes)),
        **extra,
    }


def pool(
    line_id: str,
    version: str = "5.0",
    seats: int | None = 3,
    expires: str = "permanent",
    kind: str = "floating",
) -> dict[str, Any]:
    return {
        "id": line_id,
        "version": version,
        "seats": seats,
        "type": kind,
        "start": "permanent",
        "expires": expires,
        "lineno": 2,
    }


def report(*features: dict[str, Any], host: str = "lm1", port: int = 1493) -> dict[str, Any]:
    return {
        "ok": True,
        "server": {
            "name": "netmap_lm",
            "version": "0.1.0",
            "host": host,
            "port": port,
            "key_fingerprint": "SHA256:x",
            "time": int(NOW * 1000),
            "uptime": 60,
            "license": "/etc/netmap_lm/license.lic",
        },
        "features": list(features),
        "problems": [],
    }


def feature(
    name: str,
    seats: int | None,
    leases: list[dict[str, Any]],
    lines: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "name": name,
        "seats": seats,
        "in_use": len(leases),
        "lines": lines if lines is not None else [pool(f"{name}-1", seats=seats)],
        "leases": leases,
        **extra,
    }


def test_lmstat_a_layout_exactly() -> None:
    text = format_report(
        report(
            feature(
                "netmap",
                3,
                [
                    lease("bob", "ws1", 1, minutes=20),
                    lease("carol", "ws2", 2, display=":0", version="0"),
                ],
                lines=[pool("netmap-1")],
            ),
            feature("solo", 1, []),
        ),
        NOW,
        tz=UTC,
    )
    banner = lmstat_format.banner("lmutil")
    assert (
        text
        == f"""{banner}
Flexible License Manager status on Sat 11/28/2026 9:15

License server status: 1493@lm1
    License file(s) on lm1: /etc/netmap_lm/license.lic:

    lm1: license server UP (MASTER) v0.1.0

Vendor daemon status (on lm1):

    netmap_lm: UP v0.1.0

Feature usage info:

Users of netmap:  (Total of 3 licenses issued;  Total of 2 licenses in use)

  "netmap" v5.0, vendor: netmap_lm, expiry: permanent
  floating license

    bob ws1 /dev/tty (v5.0) (lm1/1493 1), start Sat 11/28 8:55
    carol ws2 :0 (v5.0) (lm1/1493 2), start Sat 11/28 9:15

Users of solo:  (Total of 1 license issued;  Total of 0 licenses in use)

"""
    )


def skeleton(text: str) -> list[tuple[str, str]]:
    """Each line as (indentation, kind): the layout without the data."""
    kinds = [
        ("banner", r"^\S+ - Copyright \(c\) "),
        ("status-on", r"^Flexible License Manager status on \w{3} \d+/\d+/\d{4} \d+:\d\d$"),
        ("servers", r"^License server status: \d+@\S+$"),
        ("files", r"^License file\(s\) on \S+: .+:$"),
        ("server-up", r"^\S+: license server UP \(MASTER\) v[\d.]+$"),
        ("vendor-on", r"^Vendor daemon status \(on \S+\):$"),
        ("vendor-up", r"^\w+: UP v[\d.]+$"),
        ("usage-info", r"^Feature usage info:$"),
        (
            "users-of",
            r"^Users of \S+:  \(Total of \d+ licenses? issued;  "
            r"Total of \d+ licenses? in use\)$",
        ),
        ("feature", r'^"\S+" v[\d.]+, vendor: \w+(, expiry: \S+)?$'),
        ("type", r"^floating license$"),
        ("holder", r"^\S+ \S+ \S+ \(v[\d.]+\) \(\S+/\d+ \d+\), start \w{3} \d+/\d+ \d+:\d\d$"),
        ("blank", r"^$"),
    ]
    result = []
    for line in text.splitlines():
        body = line.lstrip()
        kind = next((k for k, rx in kinds if re.match(rx, body)), f"?{line}")
        result.append((line[: len(line) - len(body)], kind))
    return result


def test_layout_matches_the_flexlm_sample_line_for_line() -> None:
    # The ARM ka4037 sample, rebuilt as a netmap_lm status reply: three features
    # of ten seats, one holder of the first.
    arm = sample("arm_ka4037_lmstat_a.txt").replace("[Detecting lmgrd processes...]\n", "")
    ours = format_report(
        report(
            feature(
                "rvd_arm",
                10,
                [
                    lease(
                        "ngnere",
                        "clientpc",
                        301,
                        display="CLIENTPC",
                        version="4.0",
                        line="rvd_arm-1",
                    )
                ],
                lines=[pool("rvd_arm-1", version="4.0", seats=10)],
            ),
            feature("rvd_rtos", 10, []),
            feature("rvd_trace", 10, []),
            host="myserver",
            port=8224,
        ),
        NOW,
        tz=UTC,
    )
    # (lmutil prints "[Detecting lmgrd processes...]" only when it searches for
    # servers itself, without -c.)
    assert skeleton(ours) == skeleton(arm)
    assert not any(kind.startswith("?") for _, kind in skeleton(ours))
    assert ours.splitlines()[-4:] == arm.splitlines()[-4:]  # identical "Users of" lines
    assert "    ngnere clientpc CLIENTPC (v4.0) (myserver/8224 301), start Sat 11/28 9:15" in ours


def test_the_tools_read_the_formatter_output() -> None:
    text = format_report(
        report(
            feature(
                "netmap",
                5,
                [
                    lease("bob", "ws1.example.com", 1),
                    lease("carol", "ws2", 2, line="netmap-2", version="6.0"),
                    lease("bob", "ws3", 3, count=2),
                ],
                lines=[
                    pool("netmap-1"),
                    pool("netmap-2", version="6.0", seats=2, expires="2027-03-01"),
                ],
                reservations=[
                    {"count": 2, "kind": "GROUP", "name": "cad"},
                    {"count": 1, "kind": "HOST", "name": "ws9"},
                ],
                queue=[
                    {
                        "user": "dave",
                        "host": "ws4",
                        "display": "",
                        "version": "5.0",
                        "handle": 7,
                        "count": 1,
                    }
                ],
            ),
            feature("free", None, [lease("eve", "ws5", 4, line="free-1")]),
            feature("solo", 1, [lease("zed", "ws6", 5, line="solo-1")]),
        ),
        NOW,
        tz=UTC,
    )
    parsed = exporter_parse(text)
    assert parsed["servers"] == {
        "lm1": {"fqdn": "lm1", "port": "1493", "up": True, "master": True, "version": "v0.1.0"}
    }
    assert parsed["vendors"] == {"netmap_lm": {"up": True, "version": "v0.1.0"}}
    assert parsed["features"] == {
        "netmap": {"issued": 5, "used": 3},
        "solo": {"issued": 1, "used": 1},
    }
    assert parsed["users"] == {
        "netmap": Counter({"bob": 3, "carol": 1}),
        "solo": Counter({"zed": 1}),
    }
    assert parsed["reservations"] == {"netmap": {"cad": 2}}
    assert "\t2 RESERVATIONs for GROUP cad (lm1/1493)" in text
    assert "\t1 RESERVATION for HOST ws9 (lm1/1493)" in text
    assert any(EXP_HOST_RESERV.match(line) for line in text.splitlines())
    assert "    dave ws4 /dev/tty (v5.0) (lm1/1493 7) queued for 1 license" in text
    assert '  "netmap" v6.0, vendor: netmap_lm, expiry: 1-mar-2027' in text
    assert "    bob ws3 /dev/tty (v5.0) (lm1/1493 3), start Sat 11/28 9:15, 2 licenses" in text
    assert "Users of free:  (Uncounted, node-locked)" in text and "eve" not in text
    assert EXP_NODELOCKED.match("Users of free:  (Uncounted, node-locked)")
    types = [m["type"] for ln in text.splitlines() if (m := EXP_TYPE.match(ln))]
    assert types == ["floating", "floating", "floating"]
    # The Slurm agent's expressions (it asks for one feature at a time).
    one = render(
        [
            Probe(
                "lm1",
                1493,
                report(
                    feature(
                        "netmap",
                        5,
                        [lease("bob", "ws1.example.com", 1), lease("bob", "ws3", 3, count=2)],
                        lines=[pool("netmap-1")],
                    )
                ),
            )
        ],
        NOW,
        mode="f",
        feature="netmap",
        tz=UTC,
    )
    assert slurm_parse(one) == {
        "feature": "netmap",
        "total": 5,
        "used": 2,
        "uses": [("bob", "ws1.example.com", 1), ("bob", "ws3", 2)],
    }


def test_singular_and_plural_as_flexlm() -> None:
    text = format_report(report(feature("one", 1, [lease("a", "h", 1, line="one-1")])), NOW)
    line = next(ln for ln in text.splitlines() if ln.startswith("Users of"))
    assert line == "Users of one:  (Total of 1 license issued;  Total of 1 license in use)"
    assert EXP_FEATURE_USAGE.match(line)
    # The Slurm agent (like with real FlexLM) only reads "licenses issued".
    assert not SLURM_FEATURE.match(line)
    assert lmstat_format.plural(0, "license") == "0 licenses"


def test_client_chosen_fields_cannot_forge_lines() -> None:
    evil = "x\nUsers of fake:  (Total of 99 licenses issued;  Total of 0 licenses in use)"
    text = format_report(
        report(feature("netmap", 3, [lease(evil, "ws 1\r\n", 1, display="a\tb", line="netmap-1")])),
        NOW,
        tz=UTC,
    )
    assert "fake" not in exporter_parse(text)["features"]
    holder = [ln for ln in text.splitlines() if "start" in ln]
    assert holder == [
        "    x?Users of fake:  (Total of 99 licenses issued;  Total of 0 licenses"
        " in use) ws_1__ a_b (v5.0) (lm1/1493 1), start Sat 11/28 9:15"
    ]


def test_times_use_the_server_offset_when_it_sends_one() -> None:
    rep = report(feature("netmap", 3, [lease("bob", "ws1", 1, line="netmap-1")]))
    rep["server"]["utc_offset"] = -5 * 3600
    text = format_report(rep, NOW)
    assert "Flexible License Manager status on Sat 11/28/2026 4:15" in text
    assert "start Sat 11/28 4:15" in text
    assert lmstat_format.stamp(NOW, timezone(timedelta(hours=10))) == "Sat 11/28 19:15"
    assert lmstat_format.expiry("2026-01-05") == "5-jan-2026"


def test_down_and_partly_down_servers() -> None:
    down = [Probe("lm1", 1493, error='-15,570:111 "Connection refused"')]
    text = render(down, NOW, mode="a", tz=UTC)
    assert text.splitlines()[3] == (
        "Error getting status: Cannot connect to license server "
        'system. (-15,570:111 "Connection refused")'
    )
    assert check_flexlm(text)[0] == CRITICAL
    assert slurm_parse(text) == {}
    both = [
        Probe("lm1", 1493, report=report()),
        *down,
        Probe("lm2.example.com", 1493, report=report()),
    ]
    text = render(both, NOW, mode="s", tz=UTC)
    assert "License server status: 1493@lm1,1493@lm1,1493@lm2.example.com" in text
    assert "    lm2.example.com: license server UP v0.1.0" in text
    state, up, gone = check_flexlm(text)
    assert (state, up, len(gone)) == (WARNING, ["lm1", "lm2.example.com"], 1)
    assert exporter_parse(text)["servers"]["lm2"]["up"]


def test_feature_info_rows() -> None:
    rep = report(
        feature(
            "netmap",
            3,
            [],
            lines=[pool("a"), pool("b", version="6.0", seats=2, expires="2027-03-01")],
        ),
        feature("free", None, []),
    )
    text = render([Probe("lm1", 1493, rep)], NOW, mode="i", tz=UTC)
    rows = [m.groupdict() for ln in text.splitlines() if (m := EXP_FEATURE_EXP.match(ln))]
    assert rows == [
        {
            "feature": "netmap",
            "version": "5.0",
            "licenses": "3",
            "expires": "permanent",
            "vendor": "netmap_lm",
        },
        {
            "feature": "netmap",
            "version": "6.0",
            "licenses": "2",
            "expires": "1-mar-2027",
            "vendor": "netmap_lm",
        },
        {
            "feature": "free",
            "version": "5.0",
            "licenses": "0",
            "expires": "permanent",
            "vendor": "netmap_lm",
        },
    ]
    header = sample("exporter_lmstat_i_excerpt.txt").splitlines()[4:6]
    assert text.splitlines()[3:5] == header


def test_version_banner() -> None:
    text = lmstat_format.version_banner("lmutil", 0, "x86_64_linux")
    m = EXP_VERSION.match(text.splitlines()[1])
    assert m and m.groupdict() == {"version": "v0.1.0", "build": "0", "arch": "x86_64_linux"}


# -- -c ---------------------------------------------------------------------------------


def test_c_accepts_flexlm_server_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NETMAP_LM_SERVERS", raising=False)
    assert lmstat.resolve("1493@a,1600@b") == ([("a", 1493), ("b", 1600)], None)
    assert lmstat.resolve("1493@a:1600@b") == ([("a", 1493), ("b", 1600)], None)
    assert lmstat.resolve("1493@a;@b;c:1700") == ([("a", 1493), ("b", 1493), ("c", 1700)], None)
    assert lmstat.resolve("1493@::1") == ([("::1", 1493)], None)
    assert lmstat.resolve(None) == ([("localhost", 1493)], None)
    kit = Kit(tmp_path)
    path = kit.write_license()
    assert lmstat.resolve(str(path)) == ([("127.0.0.1", kit.port)], str(path))
    assert lmstat.resolve(f"{path}:1@x") == ([("127.0.0.1", kit.port), ("x", 1)], str(path))
    with pytest.raises(lmstat.LmstatError, match="Cannot find license file"):
        lmstat.resolve(str(tmp_path / "missing.lic"))
    (tmp_path / "empty.lic").write_text("# nothing\n")
    with pytest.raises(lmstat.LmstatError, match="No SERVER lines"):
        lmstat.resolve(str(tmp_path / "empty.lic"))
    with pytest.raises(lmstat.LmstatError, match="port"):
        lmstat.resolve("99999@a")


# -- end to end: a real server and the console scripts -----------------------------------


@pytest.fixture
def busy(kit: Kit) -> Iterator[Kit]:
    """A server with netmap (3 + 2 seats on two lines), solo (1), idle (4); bob and
    carol hold netmap, dave holds solo (``kit.leases`` by user)."""
    kit.write_license(
        [
            kit.feature_line("netmap", seats=3),
            kit.feature_line("netmap", seats=2, version="6.0", expires="2099-03-01"),
            kit.feature_line("solo", seats=1),
            kit.feature_line("idle", seats=4),
        ]
    )
    clients = []
    with ServerProcess(kit):
        try:
            for user, host, name, version in [
                ("bob", "ws1", "netmap", "5.0"),
                ("carol", "ws2", "netmap", "6.0"),
                ("dave", "ws3", "solo", "5.0"),
            ]:
                client = LicenseClient(
                    servers=kit.servers, vendor_key=str(kit.vendor_pub), user=user, host=host
                )
                clients.append((client, client.checkout(name, version)))
            kit.leases = {client.user: held for client, held in clients}  # type: ignore[attr-defined]
            yield kit
        finally:
            for client, held in clients:
                held.checkin()
                client.close()


def run(kit: Kit, script: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(script), *args], env=kit.env(**env), capture_output=True, text=True, timeout=60
    )


def test_lmutil_lmstat_a_for_the_exporter(busy: Kit) -> None:
    done = run(busy, LMUTIL, "lmstat", "-c", busy.servers, "-a")
    assert done.returncode == 0, done.stderr
    parsed = exporter_parse(done.stdout)
    assert parsed["servers"] == {
        "127": {
            "fqdn": "127.0.0.1",
            "port": str(busy.port),
            "up": True,
            "master": True,
            "version": "v0.1.0",
        }
    }
    assert parsed["vendors"] == {"netmap_lm": {"up": True, "version": "v0.1.0"}}
    assert parsed["features"] == {
        "idle": {"issued": 4, "used": 0},
        "netmap": {"issued": 5, "used": 2},
        "solo": {"issued": 1, "used": 1},
    }
    assert parsed["users"] == {
        "netmap": Counter({"bob": 1, "carol": 1}),
        "solo": Counter({"dave": 1}),
    }
    assert f"(v6.0) (127.0.0.1/{busy.port} " in done.stdout
    assert not any(kind.startswith("?") for _, kind in skeleton(done.stdout))


def test_f_feature_for_the_slurm_agent(busy: Kit) -> None:
    done = run(busy, LMUTIL, "lmstat", "-c", busy.servers, "-f", "netmap")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("Users of ") == 1 and "License server status" not in done.stdout
    assert slurm_parse(done.stdout) == {
        "feature": "netmap",
        "total": 5,
        "used": 2,
        "uses": [("bob", "ws1", 1), ("carol", "ws2", 1)],
    }
    missing = run(busy, LMUTIL, "lmstat", "-c", busy.servers, "-f", "nosuch")
    assert missing.returncode == 77
    assert "Cannot get users of nosuch: No such feature exists." in missing.stdout


def test_license_file_and_plain_lmstat_for_check_flexlm(busy: Kit) -> None:
    done = run(busy, LMSTAT, "-c", str(busy.license))  # what check_flexlm.pl runs
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("lmstat - Copyright")
    assert f"    License file(s) on 127.0.0.1: {busy.license}:" in done.stdout
    assert check_flexlm(done.stdout) == (OK, ["127.0.0.1"], [])
    assert "Users of" not in done.stdout
    everything = run(busy, LMSTAT, "-a", f"-c{busy.license}")
    assert exporter_parse(everything.stdout)["features"]["netmap"] == {"issued": 5, "used": 2}


def test_lmstat_i_and_v(busy: Kit) -> None:
    info = run(busy, LMUTIL, "lmstat", "-c", busy.servers, "-i")
    rows = [m["feature"] for ln in info.stdout.splitlines() if (m := EXP_FEATURE_EXP.match(ln))]
    assert sorted(rows) == ["idle", "netmap", "netmap", "solo"]
    version = run(busy, LMUTIL, "lmstat", "-v")
    assert version.returncode == 0
    assert EXP_VERSION.match(version.stdout.splitlines()[1])


def test_queued_checkout(busy: Kit) -> None:
    waiting = LicenseClient(
        servers=busy.servers, vendor_key=str(busy.vendor_pub), user="erin", host="ws5", display=":1"
    )
    queued = threading.Event()
    got: list[Any] = []

    def wait_for_seat() -> None:
        try:
            got.append(
                waiting.checkout("solo", "5.0", wait=30, on_queued=lambda _position: queued.set())
            )
        except Exception as exc:
            got.append(exc)

    thread = threading.Thread(target=wait_for_seat, daemon=True)
    thread.start()
    try:
        assert queued.wait(15)
        done = run(busy, LMUTIL, "lmstat", "-c", busy.servers, "-f", "solo")
        line = f"    erin ws5 :1 (v5.0) (127.0.0.1/{busy.port} 1) queued for 1 license"
        assert line in done.stdout.splitlines()
        assert "Total of 1 license in use" in done.stdout
    finally:
        busy.leases["dave"].checkin()  # type: ignore[attr-defined]
        thread.join(30)
        for lease in got:
            if not isinstance(lease, Exception):
                lease.checkin()
        waiting.close()
    assert got and not isinstance(got[0], Exception), got


def test_status_lmstat(busy: Kit) -> None:
    done = busy.cli("status", "--lmstat")
    assert done.returncode == 0, done.stderr
    parsed = exporter_parse(done.stdout)
    assert parsed["servers"]["127"]["master"]
    assert parsed["users"]["netmap"] == Counter({"bob": 1, "carol": 1})
    one = busy.cli("status", "--lmstat", "--feature", "solo")
    assert list(exporter_parse(one.stdout)["features"]) == ["solo"]


def test_down_server(kit: Kit) -> None:
    kit.write_license()  # nothing listens on kit.port
    done = run(kit, LMUTIL, "lmstat", "-c", kit.servers, "-a")
    assert done.returncode == 69
    assert (
        "Error getting status: Cannot connect to license server system. "
        '(-15,570:111 "Connection refused")'
    ) in done.stdout
    assert "SERVER_UNREACHABLE" in done.stderr
    assert check_flexlm(run(kit, LMSTAT, "-c", str(kit.license)).stdout)[0] == CRITICAL


def test_one_of_two_servers_down(busy: Kit) -> None:
    dead = free_port()
    done = run(busy, LMUTIL, "lmstat", "-c", f"{busy.servers}:{dead}@localhost", "-a")
    assert done.returncode == 0
    assert "    localhost: Cannot connect to license server system." in done.stdout
    state, up, down = check_flexlm(done.stdout)
    assert (state, up, len(down)) == (WARNING, ["127.0.0.1"], 1)
    assert exporter_parse(done.stdout)["features"]["netmap"]["used"] == 2


def test_untrusted_server(busy: Kit, tmp_path: Path) -> None:
    keys.generate_pair(tmp_path / "other", "vendor", "someone else")
    done = run(
        busy,
        LMUTIL,
        "lmstat",
        "-c",
        busy.servers,
        "-a",
        "--vendor-key",
        str(tmp_path / "other" / "vendor.pub"),
    )
    assert done.returncode == 76
    assert "Cannot connect to license server system." in done.stdout
    assert "bob" not in done.stdout


def test_arguments(kit: Kit) -> None:
    assert run(kit, LMUTIL, "lmdown").returncode == 78
    assert run(kit, LMUTIL, "lmstat", "-x").returncode == 78
    assert run(kit, LMUTIL, "lmstat", "-c", str(kit.root / "none.lic")).returncode == 78
    assert "usage" in run(kit, LMSTAT, "-help").stdout


@pytest.mark.parametrize("seconds", ["inf", "nan", "0", "-1", "1e10", "soon"])
def test_timeout_must_be_seconds_a_socket_can_take(kit: Kit, seconds: str) -> None:
    done = run(kit, LMSTAT, "-t", seconds, "-c", f"{free_port()}@127.0.0.1")
    assert done.returncode == 78, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith(f"lmstat: argument -t: {seconds!r}: give the")


def test_lmstat_loads_no_netmap_lm_command(busy: Kit) -> None:
    """lmstat runs at every monitoring poll: it finds the vendor key without
    loading click and every ``netmap-lm`` command (about 90 ms a run)."""
    script = (
        "import sys\n"
        "from netmap_lm.cli import lmstat\n"
        "code = lmstat.main(sys.argv[1:], 'lmstat')\n"
        "loaded = [m for m in ('click', 'netmap_lm.cli.main') if m in sys.modules]\n"
        "print('loaded:', loaded, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "-a", "-c", busy.servers],
        env=busy.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "bob" in done.stdout
    assert done.stderr.splitlines()[-1] == "loaded: []"
