"""MkDocs hooks of the docs site (`hooks:` in mkdocs.yml).

- The command-line reference (`cli.md`) is generated from the parser, `ctrnn_jax._cli.build_parser()`:
  the page holds a marker that is replaced by every command's `--help`.
- Every public name of the package must appear in a `::: ctrnn_jax.…` block of an API page
  (`docs/api/*.md`); a missing one fails the build.
- Cross-references written in docstrings and comments as backticked dotted names (`ctrnn_jax.models._scan`)
  must import, and "see `name`" must name something defined in the package; a stale one fails the build.
  (mkdocstrings' own `[text][ctrnn_jax.Name]` links fail a strict build by themselves.)
- The notebooks (`docs/examples/*.ipynb`, rendered by mkdocs-jupyter, which leaves their links as written)
  link pages as files, `../tasks.md#writing-a-task` or `your_own_task.ipynb`, which is what works on GitHub;
  in the site those links are rewritten to the pages' URLs. A link to a file that is not in the site, or to
  an anchor that its page does not have, fails the build.
"""

import ast
import importlib
import os
import posixpath
import re
import types
from pathlib import Path

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[1]
CLI_MARKER = "<!-- cli-reference -->"
LAYERS = ("models", "tasks", "training", "dynamics", "io", "analysis")


def public_names() -> set[str]:
    """`ctrnn_jax.X` for every public object of the top-level package, and `ctrnn_jax.LAYER.X` for every
    public object of a layer that the top level does not re-export."""
    import ctrnn_jax

    def names(module):
        out = {}
        for name, obj in vars(module).items():
            if name.startswith("_") or isinstance(obj, types.ModuleType):
                continue
            origin = getattr(obj, "__module__", None) or ""
            if callable(obj) and not origin.startswith("ctrnn_jax"):
                continue  # an import of another library's function (importlib.metadata.version, ...)
            out[name] = obj
        return out

    top = names(ctrnn_jax)
    found = {f"ctrnn_jax.{n}" for n in top}
    for layer in LAYERS:
        module = importlib.import_module(f"ctrnn_jax.{layer}")
        for name, obj in names(module).items():
            if name not in top:
                found.add(f"ctrnn_jax.{layer}.{name}")
    return found


def documented_names(docs_dir: Path) -> set[str]:
    found = set()
    for page in (docs_dir / "api").glob("*.md"):
        found |= set(re.findall(r"^::: (ctrnn_jax[\w.]*)\s*$", page.read_text(), re.M))
    return found


def check_api_pages(docs_dir: Path) -> None:
    missing = sorted(public_names() - documented_names(docs_dir))
    if missing:
        raise PluginError(f"public names on no API page (add a `::: NAME` block to docs/api/): {', '.join(missing)}")


def _defined_names() -> set[str]:
    """Every name defined anywhere in the package: modules, functions, classes, methods, assignments and
    parameters (a docstring may say "see `out_dir`" of its own argument)."""
    out = set()
    for path in (ROOT / "ctrnn_jax").rglob("*.py"):
        out.add(path.stem)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out.add(node.name)
            elif isinstance(node, ast.arg):
                out.add(node.arg)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    if isinstance(t, ast.Name):
                        out.add(t.id)
    return out


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def stale_references() -> list[str]:
    defined = _defined_names()
    stale = []
    for path in sorted((ROOT / "ctrnn_jax").rglob("*.py")):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            where = f"{path.relative_to(ROOT)}:{i}"
            for dotted in re.findall(r"`(ctrnn_jax(?:\.\w+)+)", line):
                if not _resolves(dotted):
                    stale.append(f"{where}: `{dotted}`")
            for name in re.findall(r"\b[Ss]ee `(\w+)(?:\(\))?`", line):
                if name not in defined:
                    stale.append(f"{where}: see `{name}`")
    return stale


def cli_reference() -> str:
    from ctrnn_jax._cli import build_parser

    parser = build_parser()
    width = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps the help to the terminal's width
    try:
        parts = ["## `ctrnn-jax`", "", "```text", parser.format_help().rstrip(), "```", ""]
        for name, sub in parser.commands.items():
            parts += [f"## `ctrnn-jax {name}`", "", "```text", sub.format_help().rstrip(), "```", ""]
    finally:
        if width is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = width
    return "\n".join(parts)


# a relative link to a page's source file in rendered HTML: href="../tasks.md#writing-a-task"
_FILE_LINK = re.compile(r'(<a\s[^>]*?\bhref=")([^":#?]+\.(?:md|ipynb))(#[^"]*)?(")')
_notebook_anchors: list[tuple[str, str, str]] = []  # (notebook, page's built file, anchor), checked after the build


def notebook_links(html: str, page, files) -> str:
    """The links to page sources (`.md`, `.ipynb`) in a notebook page's HTML, rewritten to the pages' URLs."""

    def rewrite(match):
        before, href, anchor, after = match.groups()
        target = files.get_file_from_path(
            posixpath.normpath(posixpath.join(posixpath.dirname(page.file.src_uri), href))
        )
        if target is None or not target.is_documentation_page():
            raise PluginError(f"{page.file.src_uri}: a link to {href}, which is no page of the site")
        if anchor and anchor != "#":
            _notebook_anchors.append((page.file.src_uri, target.dest_uri, anchor[1:]))
        return f"{before}{target.url_relative_to(page.file)}{anchor or ''}{after}"

    return _FILE_LINK.sub(rewrite, html)


def on_pre_build(config, **kwargs):
    _notebook_anchors.clear()
    check_api_pages(Path(config["docs_dir"]))
    stale = stale_references()
    if stale:
        raise PluginError("stale cross-references in the package:\n  " + "\n  ".join(stale))


def on_page_markdown(markdown, page, config, files, **kwargs):
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    return markdown


def on_page_content(html, page, config, files, **kwargs):
    if page.file.src_uri.endswith(".ipynb"):
        html = notebook_links(html, page, files)
    return html


def on_post_build(config, **kwargs):
    missing = []
    for notebook, built, anchor in _notebook_anchors:
        text = (Path(config["site_dir"]) / built).read_text(encoding="utf-8")
        if f'id="{anchor}"' not in text:
            missing.append(f"{notebook}: #{anchor} is no anchor of {built}")
    if missing:
        raise PluginError("broken links in the notebooks:\n  " + "\n  ".join(missing))
