"""The code's layout keeps one place per job (issue 12): no module grows past ~400 lines without
saying why at its top, and neither side of the wire imports the other's code."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("agent", "collector", "linewatch", "bench", "tools")
LIMIT = 400


def modules(*folders: str):
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_no_module_is_longer_than_400_lines_without_a_reason_at_its_top():
    unexplained = []
    for p in modules(*PRODUCT):
        text = p.read_text()
        if text.count("\n") > LIMIT:
            doc = ast.get_docstring(ast.parse(text)) or ""
            if "longer than 400 lines" not in doc.lower():
                unexplained.append(f"{p.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert unexplained == [], "say why at the top ('Longer than 400 lines on purpose: ...') or split: " + \
        ", ".join(unexplained)


def imports(p: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(p.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the package path
                parts = list(p.relative_to(ROOT).with_suffix("").parts[:-node.level])
                base = ".".join(["linewatch", *parts] + ([base] if base else []))
                base = base.replace("linewatch.linewatch", "linewatch")
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_neither_side_of_the_wire_imports_the_other_and_the_shared_code_imports_neither():
    crossing = []
    for p in modules("agent"):
        crossing += [f"{p.relative_to(ROOT)}: {m}" for m in imports(p) if m.startswith("linewatch.collector")]
    for p in modules("collector"):
        crossing += [f"{p.relative_to(ROOT)}: {m}" for m in imports(p) if m.startswith("linewatch.agent")]
    for p in modules("linewatch"):
        if p.name in ("cli.py",):  # `linewatch up` runs both sides in one process, on purpose
            continue
        crossing += [f"{p.relative_to(ROOT)}: {m}" for m in imports(p)
                     if m.startswith(("linewatch.agent", "linewatch.collector"))]
    assert crossing == []


def test_adding_a_probe_touches_its_module_the_registry_and_the_wire_schema_only():
    """The per-kind knowledge of the agent lives in the probe: its config, its run, its failed
    result and its one-line summary for the clerk; the CLI and runner ask the registry."""
    from linewatch import wire
    from linewatch.agent.probes import REGISTRY, Probe

    for name, probe in REGISTRY.items():
        assert probe.kind in wire.SCHEMAS, name
        for method in ("parse_config", "run", "failed", "summary"):
            assert getattr(type(probe), method) is not getattr(Probe, method) or method == "summary" \
                and name in ("latency",), f"{name} does not implement {method}"
    for p in (ROOT / "agent" / "cli.py", ROOT / "agent" / "runner.py", ROOT / "agent" / "commands.py"):
        text = p.read_text()
        named = [k for k in REGISTRY if f'"{k}"' in text and k != "reach"]
        assert named == [], f"{p.name} names probe kinds {named}: that knowledge belongs in the probe"
