"""A compiled plan drawn as Mermaid, Graphviz dot, or indented text."""

from __future__ import annotations

import re

from agenthq.graph import PlanGraph

_SAFE_NODE = re.compile(r"[^A-Za-z0-9_]")


def _node_name(step_id: str) -> str:
    return "n_" + _SAFE_NODE.sub("_", step_id)


def mermaid(graph: PlanGraph) -> str:
    lines = ["flowchart TD"]
    for node in graph.nodes.values():
        kind = "run" if node.spec.run is not None else "uses"
        lines.append(f'    {_node_name(node.id)}["{node.id}<br/><small>{kind}</small>"]')
    for node in graph.nodes.values():
        for need in node.needs:
            arrow = (
                "-->"
                if node.spec.trigger.value == "all_success"
                else f"-. {node.spec.trigger.value} .->"
            )
            lines.append(f"    {_node_name(need)} {arrow} {_node_name(node.id)}")
    return "\n".join(lines)


def dot(graph: PlanGraph) -> str:
    lines = [
        f'digraph "{graph.spec.name}" {{',
        "  rankdir=LR;",
        '  node [shape=box, style=rounded, fontname="Helvetica"];',
    ]
    for node in graph.nodes.values():
        lines.append(f'  "{node.id}";')
    for node in graph.nodes.values():
        for need in node.needs:
            style = (
                ""
                if node.spec.trigger.value == "all_success"
                else f' [style=dashed, label="{node.spec.trigger.value}"]'
            )
            lines.append(f'  "{need}" -> "{node.id}"{style};')
    lines.append("}")
    return "\n".join(lines)


def text(graph: PlanGraph) -> str:
    lines = [f"{graph.spec.name}: {len(graph.nodes)} steps in {len(graph.layers())} layers"]
    for depth, layer in enumerate(graph.layers()):
        lines.append(f"layer {depth}:")
        for step_id in layer:
            node = graph.nodes[step_id]
            needs = f"  ← {', '.join(node.needs)}" if node.needs else ""
            trigger = (
                f"  [{node.spec.trigger.value}]" if node.spec.trigger.value != "all_success" else ""
            )
            lines.append(f"  {step_id}{needs}{trigger}")
    return "\n".join(lines)
