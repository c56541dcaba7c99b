"""The hostile-answer table (tests/hostile/cases.json) against the Python
client: the test server answers with each crafted case, and the request
must end as the table says. Rows marked pending are reported as skipped
with their reason, never as passed."""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, List

import pytest

import pcp_rs
from pcp_rs.testing import Server

TABLE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests", "hostile", "cases.json")
with open(TABLE_PATH) as f:
    TABLE: Dict[str, Any] = json.load(f)
CASES: List[Dict[str, Any]] = TABLE["cases"]


def outcome(client: pcp_rs.Client, port: int, prefer_failure: bool) -> str:
    try:
        # "request": "prefer_failure": suggest the internal port, with PREFER_FAILURE.
        m = client.map("tcp", port, port, prefer_failure=True) if prefer_failure else client.map("tcp", port)
    except pcp_rs.PcpError as e:
        return "timeout" if e.name == "TIMEOUT" else f"error {e.name}"
    if m.external_ip == TABLE["external_ip"] and m.external_port != 0:
        return "taken"
    return f"taken with a wrong answer: {m.external_ip}:{m.external_port}"


@pytest.mark.parametrize("row", CASES, ids=[r["case"] for r in CASES])
def test_hostile_case(row: Dict[str, Any]) -> None:
    want = f"error {row['error']}" if row["expect"] == "error" else row["expect"]
    if "pending" in row:
        pytest.skip(f"PENDING (want {want}): {row['pending']}")
    with Server() as server:
        server.set_hostile(row["case"])
        with pcp_rs.Client(server.address, deadline=TABLE["deadline_ms"] / 1000, listen_announce=False) as client:
            prefer_failure = row.get("request") == "prefer_failure"
            got = [outcome(client, 7000 + i, prefer_failure) for i in range(row.get("requests", 1))]
            server.set_hostile(None)
    assert got == [want] * len(got)


def test_hostile_arguments() -> None:
    with Server() as server:
        with pytest.raises(ValueError):
            server.set_hostile("no such case")
        with pytest.raises(TypeError):
            server.set_hostile(3)  # type: ignore[arg-type]
        for bad in (-0.1, 1.5, float("nan")):
            with pytest.raises(ValueError):
                server.set_loss(bad)
        server.set_loss(0.0)
        server.set_hostile(None)


def test_server_argument_errors_are_the_cores_messages() -> None:
    # The same text C and Node show for the same call.
    def says(text: str) -> str:
        return "^" + re.escape("invalid argument: " + text) + "$"

    with Server() as server:
        with pytest.raises(pcp_rs.InvalidArgument, match=says('name: no hostile case named "no such case"')):
            server.set_hostile("no such case")
        with pytest.raises(pcp_rs.InvalidArgument, match=says("loss: 1.5 is not a fraction from 0 to 1")):
            server.set_loss(1.5)
        with pytest.raises(pcp_rs.InvalidArgument, match=says("loss: NaN is not a fraction from 0 to 1")):
            server.set_loss(float("nan"))
        server.set_loss(1.0)
        server.set_loss(0.0)
    with pytest.raises(pcp_rs.InvalidArgument, match=says('mode: "upnp" is not "both", "pcp" or "natpmp"')):
        Server(mode="upnp")
    with pytest.raises(pcp_rs.InvalidArgument, match=says("min_lifetime (10) must not exceed max_lifetime (5)")):
        Server(min_lifetime=10, max_lifetime=5)
    with pytest.raises(pcp_rs.InvalidArgument, match=says('host: "nope" is not an IPv4 or IPv6 address')):
        Server(host="nope")
    with Server() as server:
        with pytest.raises(pcp_rs.InvalidArgument, match=says('code: "NOT_A_CODE" is not the name of a PCP error result code')):
            server.force_result("NOT_A_CODE")
        with pytest.raises(pcp_rs.InvalidArgument, match=says("code: 14 is not a PCP error result code (1..13)")):
            server.force_result(14)
        for success in ("SUCCESS", 0):  # no error to force (None answers normally)
            with pytest.raises(pcp_rs.InvalidArgument):
                server.force_result(success)
