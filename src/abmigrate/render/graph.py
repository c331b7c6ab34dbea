"""The revision graph drawn: Graphviz DOT, Mermaid, and SVG laid out by Graphviz's ``dot``.

All three are renderings of the graph record (:class:`abmigrate.state.graph.RevisionGraph`
``.to_record()``): newest revision at the top, an edge from each revision to its parents.
Every revision is one SVG node ``<g id="rev_ID" class="node revision STATUS …">``; a parent
no script defines is drawn dashed (class ``missing``) so the broken edge shows.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from abmigrate.errors import AbmigrateError

__all__ = [
    "GraphvizMissing",
    "dot_available",
    "inline_svg",
    "node_classes",
    "to_dot",
    "to_mermaid",
    "to_svg",
]

# Fill per status; the border says head/problem/current.
_FILL = {"applied": "#d8f0dc", "pending": "#fff1c2", "unknown": "#f8d0d0", None: "#ffffff"}
_PROBLEM = "#c62828"
_CURRENT = "#1f5fbf"
_MESSAGE_WIDTH = 44
_DOT_TIMEOUT_S = 120


class GraphvizMissing(AbmigrateError):
    """Graphviz's ``dot`` is not installed: SVG cannot be drawn (DOT and Mermaid can)."""


def _short(text: str, width: int = _MESSAGE_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def node_classes(node: dict[str, Any]) -> list[str]:
    """The classes a revision's node carries, in the SVG and in Mermaid."""
    classes = ["revision", node.get("status") or "nodb"]
    for flag in ("head", "root", "merge", "current"):
        if node.get(flag):
            classes.append(flag)
    if node.get("problems"):
        classes.append("problem")
    return classes


def _label(node: dict[str, Any]) -> list[str]:
    tags = [
        tag
        for tag, on in (
            ("head", node.get("head")),
            ("root", node.get("root")),
            ("merge", node.get("merge")),
            ("current", node.get("current")),
        )
        if on
    ]
    first = node["revision"] + (f"  ({', '.join(tags)})" if tags else "")
    lines = [first]
    if node.get("branch_labels"):
        lines.append("branch: " + ", ".join(node["branch_labels"]))
    if node.get("message"):
        lines.append(_short(node["message"]))
    if node.get("problems"):
        lines.append("! " + ", ".join(node["problems"]))
    return lines


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: dict[str, Any]) -> str:
    """Graphviz DOT text of the graph record."""
    nodes = graph["nodes"]
    known = {node["revision"] for node in nodes}
    lines = [
        "digraph revisions {",
        '  graph [rankdir=TB, nodesep=0.3, ranksep=0.35, bgcolor="transparent",'
        ' fontname="DejaVu Sans"];',
        '  node [shape=box, style="rounded,filled", fontname="DejaVu Sans", fontsize=10,'
        ' color="#7a7a7a", margin="0.12,0.05"];',
        '  edge [color="#8a8a8a", arrowsize=0.6];',
    ]
    for node in nodes:
        attributes = {
            "id": f"rev_{node['revision']}",
            "class": " ".join(node_classes(node)),
            "fillcolor": _FILL.get(node.get("status"), "#ffffff"),
            "tooltip": f"{node['revision']}: {node.get('message') or ''}",
        }
        label = "\\n".join(line.replace("\\", "\\\\").replace('"', '\\"') for line in _label(node))
        extra = []
        if node.get("problems"):
            extra.append(f'color="{_PROBLEM}", penwidth=2.5')
        elif node.get("current"):
            extra.append(f'color="{_CURRENT}", penwidth=2.5')
        elif node.get("head"):
            extra.append("penwidth=2")
        if node.get("merge"):
            extra.append("peripheries=2")
        rendered = ", ".join(f"{key}={_dot_string(value)}" for key, value in attributes.items())
        lines.append(
            f'  {_dot_string(node["revision"])} [label="{label}", {rendered}'
            + (", " + ", ".join(extra) if extra else "")
            + "];"
        )
    for node in nodes:
        for parent in node.get("parents") or []:
            if parent not in known:
                known.add(parent)
                lines.append(
                    f"  {_dot_string(parent)} [id={_dot_string('missing_' + parent)},"
                    f' class="missing", style="dashed", color="{_PROBLEM}",'
                    f" label={_dot_string(parent + ' (no script)')}];"
                )
            lines.append(f"  {_dot_string(node['revision'])} -> {_dot_string(parent)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_id(revision: str) -> str:
    return "r_" + "".join(char if char.isalnum() else "_" for char in revision)


def _mermaid_text(text: str) -> str:
    # Mermaid labels in "…" take HTML entities; quotes and angle brackets must not break out.
    return (
        text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )


def to_mermaid(graph: dict[str, Any]) -> str:
    """A Mermaid flowchart of the graph record (GitHub renders it in Markdown)."""
    lines = ["flowchart TB"]
    known = {node["revision"] for node in graph["nodes"]}
    for node in graph["nodes"]:
        label = "<br/>".join(_mermaid_text(line) for line in _label(node))
        lines.append(f'    {_mermaid_id(node["revision"])}["{label}"]')
    for node in graph["nodes"]:
        for parent in node.get("parents") or []:
            if parent not in known:
                known.add(parent)
                lines.append(
                    f'    {_mermaid_id(parent)}["{_mermaid_text(parent)} (no script)"]:::problem'
                )
            lines.append(f"    {_mermaid_id(node['revision'])} --> {_mermaid_id(parent)}")
    for status, fill in _FILL.items():
        lines.append(f"    classDef {status or 'nodb'} fill:{fill},stroke:#7a7a7a")
    lines.append(f"    classDef problem stroke:{_PROBLEM},stroke-width:3px")
    for node in graph["nodes"]:
        status = node.get("status") or "nodb"
        style = "problem" if node.get("problems") else status
        lines.append(f"    class {_mermaid_id(node['revision'])} {style}")
    return "\n".join(lines) + "\n"


def dot_available() -> bool:
    return shutil.which("dot") is not None


def to_svg(graph: dict[str, Any]) -> str:
    """The graph as an SVG document, laid out by Graphviz ``dot``; GraphvizMissing without it."""
    executable = shutil.which("dot")
    if executable is None:
        raise GraphvizMissing(
            "drawing the graph as SVG needs Graphviz's `dot`, which is not installed",
            hint="install Graphviz (e.g. `apt-get install graphviz`), or use --format dot"
            " or --format mermaid, which need nothing",
        )
    done = subprocess.run(
        [executable, "-Tsvg"],
        input=to_dot(graph),
        capture_output=True,
        text=True,
        timeout=_DOT_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise AbmigrateError(
            f"Graphviz `dot` could not draw the graph: {done.stderr.strip()[:300]}",
            hint="`abmigrate graph --format dot` shows the input it was given",
        )
    return done.stdout


def inline_svg(svg: str) -> str:
    """The ``<svg>`` element alone (no XML prolog or DOCTYPE), to embed in HTML."""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg
