"""The docs keep up with the code, without building the site: `docs/layout.md` names every module of the
package under its folder, and names no module that is not there."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ctrnn_jax"
LAYOUT = ROOT / "docs" / "layout.md"


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
