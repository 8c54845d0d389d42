"""Every registered node has a help page, and the page describes every input of the node's schema.

ComfyUI shows `web/docs/<node_id>.md` in the node library's help panel. The schemas are read from
the nodes as the real ComfyUI host loads them, so a node added to the pack, or an input added to a
node, without its documentation fails here. Pages are keyed on node ids and input ids, which stay
stable; display names and tooltips may change without touching the pages.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from host.harness import require_host

pytestmark = pytest.mark.host

DOCS = Path(__file__).resolve().parents[1] / "nodes" / "web" / "docs"


@pytest.fixture(scope="module")
def schemas(tmp_path_factory):
    from host.inprocess import load_comfy

    _, pack = load_comfy(require_host(), tmp_path_factory.mktemp("comfy_docs"))
    extension = sys.modules[f"{pack.__name__}.nodes.extension"]
    return {schema.node_id: schema for schema in (node.define_schema() for node in extension.NODES)}


def described(page: str) -> set[str]:
    """The names a page describes: those set in bold (`**name**`), the style of every page."""
    return set(re.findall(r"\*\*([A-Za-z0-9_]+)\*\*", page))


def test_the_pack_registers_nodes(schemas):
    assert len(schemas) >= 27 and all(node_id.startswith("StyleGANV_") for node_id in schemas)


def test_every_node_has_a_help_page(schemas):
    missing = sorted(node_id for node_id in schemas if not (DOCS / f"{node_id}.md").is_file())
    assert not missing, f"no help page in nodes/web/docs for {missing}"


def test_every_input_is_described_on_its_page(schemas):
    problems = []
    for node_id, schema in schemas.items():
        path = DOCS / f"{node_id}.md"
        if not path.is_file():
            continue  # reported by test_every_node_has_a_help_page
        page = path.read_text(encoding="utf-8")
        if not page.startswith("# "):
            problems.append(f"{path.name}: does not start with a '# title' line")
        undocumented = [i.id for i in schema.inputs if i.id not in described(page)]
        if undocumented:
            problems.append(f"{path.name}: inputs {undocumented} are not described (as **id**: ...)")
    assert not problems, "\n".join(problems)


def test_no_page_documents_a_node_or_input_that_does_not_exist(schemas):
    """A renamed or removed node or input leaves no stale page or paragraph behind."""
    problems = []
    for path in sorted(DOCS.glob("*.md")):
        schema = schemas.get(path.stem)
        if schema is None:
            problems.append(f"{path.name}: no registered node has this id")
            continue
        known = {i.id for i in schema.inputs} | {o.id or "" for o in schema.outputs} | \
            {getattr(o, "display_name", None) or "" for o in schema.outputs}
        # Bold words that are not ids (a node's title, an emphasised phrase) contain spaces or capitals.
        stale = sorted(name for name in described(path.read_text(encoding="utf-8"))
                       if name.islower() and name not in known)
        if stale:
            problems.append(f"{path.name}: describes {stale}, which the node does not have")
    assert not problems, "\n".join(problems)
