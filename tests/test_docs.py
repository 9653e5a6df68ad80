"""The docs keep up with the code, without building the site: `docs/layout.md` names every module of the
package under its folder, and names no module that is not there; the notebooks' links to the guide point to
pages and headings that exist."""

import json
import re
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ctrnn_jax"
DOCS = ROOT / "docs"
LAYOUT = DOCS / "layout.md"


def layout_sections() -> dict[str, str]:
    """The text of `docs/layout.md` by folder: `"models"` is the bullet `` - `ctrnn_jax/models/` `` and the
    lines indented under it; `""` is every other line (the package's own top-level files)."""
    sections: dict[str, list[str]] = {"": []}
    folder = ""
    for line in LAYOUT.read_text().splitlines():
        if line.startswith("- "):
            match = re.match(r"- `ctrnn_jax/([\w/]+)/`", line)
            folder = match.group(1) if match else ""
        elif not line.startswith(" "):
            folder = ""
        sections.setdefault(folder, []).append(line)
    return {folder: "\n".join(lines) for folder, lines in sections.items()}


def package_modules() -> list[Path]:
    return sorted(p.relative_to(PACKAGE) for p in PACKAGE.rglob("*.py"))


def test_layout_names_every_module():
    sections = layout_sections()
    assert "`__init__.py`" in LAYOUT.read_text()  # said once for every folder: it re-exports the public names
    missing = []
    for path in package_modules():
        if path.name == "__init__.py":
            continue
        folder = path.parent.as_posix() if path.parent != Path(".") else ""
        if f"`{path.name}`" not in sections.get(folder, "") and f"`ctrnn_jax/{path.as_posix()}`" not in sections[""]:
            missing.append(f"ctrnn_jax/{path.as_posix()}")
    assert not missing, f"modules docs/layout.md does not name (under their folder's bullet): {missing}"


def test_layout_names_no_missing_module():
    present = {p.as_posix() for p in package_modules()}
    stale = []
    for folder, text in layout_sections().items():
        for name in re.findall(r"`(?:ctrnn_jax/)?(\w+\.py)`", text):
            path = f"{folder}/{name}" if folder else name
            if path not in present:
                stale.append(f"ctrnn_jax/{path}")
    assert not stale, f"docs/layout.md names modules that are not in the package: {stale}"


def heading_ids(page: Path) -> set[str]:
    """The anchors of a page's headings, as the site (Python-Markdown's `toc`) and GitHub make them."""
    ids = set()
    in_code = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        match = None if in_code else re.match(r"#{1,6} (.+)", line)
        if match:
            text = unicodedata.normalize("NFKD", match.group(1).replace("`", "")).encode("ascii", "ignore").decode()
            ids.add(re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", text).strip().lower()))
    return ids


def test_notebook_links_point_to_pages_and_headings():
    """Written as files (`../tasks.md#writing-a-task`, `your_own_task.ipynb`), which works on GitHub; the
    site's hook (docs/_hooks.py) rewrites them to the pages' URLs."""
    broken = []
    for notebook in sorted((DOCS / "examples").glob("*.ipynb")):
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            for href in re.findall(r"\]\(([^)\s]+)\)", "".join(cell["source"])):
                if re.match(r"\w+:", href) or href.startswith("#"):
                    continue  # a web address, or an anchor of the notebook itself
                path, _, anchor = href.partition("#")
                target = (notebook.parent / path).resolve()
                if target.suffix not in (".md", ".ipynb") or not target.is_file():
                    broken.append(f"{notebook.name}: {href} (not a page of docs/)")
                elif anchor and target.suffix == ".md" and anchor not in heading_ids(target):
                    broken.append(f"{notebook.name}: {href} (no such heading)")
    assert not broken, broken
