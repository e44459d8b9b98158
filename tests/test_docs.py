"""docs/wire.md cannot go stale: every example in it is accepted by the collector's parser."""
import json
import re
from pathlib import Path

from linewatch import wire

DOC = (Path(__file__).resolve().parent.parent / "docs/wire.md").read_text()
EXAMPLES = re.findall(r"Topic: `([^`]+)`\n```json\n(.*?)```", DOC, re.S)


def test_every_message_kind_has_a_documented_example():
    kinds = {json.loads(body)["kind"] for _, body in EXAMPLES}
    assert kinds == set(wire.SCHEMAS)


def test_every_documented_example_is_valid_under_its_topic():
    assert len(EXAMPLES) >= 5
    for topic, body in EXAMPLES:
        when = wire.parse_time(json.loads(body)["measured_at"])
        m = wire.parse_message(topic, body.encode(), now=when)
        assert m.topic == topic


def test_the_error_code_table_in_the_docs_is_the_contracts_table():
    rows = re.findall(r"^\| `([a-z0-9_.-]+)` \| (\w+) \| (.+?) \| (.+?) \|$", DOC, re.M)
    assert {c: (cause, vi, en) for c, cause, vi, en in rows} == \
        {c.code: (c.cause, c.vi, c.en) for c in wire.ERROR_CODES.values()}


def test_the_documented_command_is_one_an_agent_accepts():
    body = re.search(r"## Commands.*?```json\n(.*?)```", DOC, re.S).group(1)
    obj = json.loads(body)
    topic = wire.command_topic(obj["province"], obj["site"], obj["agent_id"])
    cmd = wire.parse_command(topic, body.encode())
    assert cmd.probe == "bandwidth" and not cmd.expired(cmd.issued_at)
