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
