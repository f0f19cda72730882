"""The package's layering, read statically from the source (nothing is imported):

- ``inrcodec/format/`` and ``inrcodec/decoder/`` import nothing of ``inrcodec.encoder`` and
  neither Pillow nor scikit-learn, following ``inrcodec.*`` imports transitively and counting
  imports inside functions (they run when the function does);
- Pillow is imported only by ``inrcodec/image.py`` and ``inrcodec/pillow_plugin.py``;
- no import cycle among ``inrcodec`` modules, counting the imports that run when a module loads
  (module level, not under ``if TYPE_CHECKING:``).

Importing ``a.b.c`` also runs the package ``a.b``'s ``__init__``; the transitive check follows
those too, except the root ``inrcodec/__init__.py``: it is the public facade (``inrcodec.encode``
and the Pillow plugin), which every submodule import runs, so it is a layer above the ones
checked here rather than a dependency of them.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from helpers import REPO


@dataclass(frozen=True)
class Import:
    target: str  # a module of the package, or the top-level name of an outside one
    line: int
    at_load: bool  # runs when the module loads: module level and not under TYPE_CHECKING


def modules(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of ``package`` under ``root``."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str, path: Path, known: dict[str, Path]) -> list[Import]:
    """Every import statement of module ``name`` (at any depth): the module of the package it names
    (``from pkg import sub`` is the module ``pkg.sub``, ``from pkg import attr`` the module ``pkg``),
    or the top-level name of an outside package. A module of the package that does not exist keeps
    its name (it matches nothing)."""
    is_package = path.name == "__init__.py"
    root = next(iter(known)).split(".")[0]
    found: list[Import] = []

    def resolve(dotted: str) -> str:
        return dotted if dotted in known or dotted.split(".")[0] == root else dotted.split(".")[0]

    def visit(node: ast.AST, at_load: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(resolve(alias.name), node.lineno, at_load))
            return
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.append(Import(sub if sub in known else resolve(source), node.lineno, at_load))
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            at_load = False
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, at_load)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, at_load)

    visit(ast.parse(path.read_text(), str(path)), True)
    return found


def import_graph(root: Path, package: str) -> tuple[dict[str, Path], dict[str, list[Import]]]:
    known = modules(root, package)
    return known, {name: imports_of(name, path, known) for name, path in known.items()}


def _ancestors(name: str, package: str) -> list[str]:
    """The packages whose ``__init__`` importing ``name`` runs, below the root ``package``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))] if name.startswith(package + ".") else []


def forbidden_imports(
    root: Path, package: str, layers: tuple[str, ...], forbidden_modules: tuple[str, ...], forbidden_outside: set[str]
) -> list[str]:
    """One line per module of ``layers`` that reaches a forbidden module or outside package,
    with the chain of imports that reaches it (imports inside functions count)."""
    known, graph = import_graph(root, package)
    problems = []
    for start in sorted(m for m in known if m.startswith(layers)):
        via = {start: [start]}
        todo = [start]
        while todo:
            mod = todo.pop()
            for imp in graph[mod]:
                nexts = [imp.target, *_ancestors(imp.target, package)] if imp.target in known else []
                chain = via[mod] + [f"{imp.target} (line {imp.line})"]
                if imp.target in known and imp.target.startswith(forbidden_modules):
                    problems.append(f"{start} imports {imp.target}: " + " -> ".join(chain))
                if imp.target not in known and imp.target in forbidden_outside:
                    problems.append(f"{start} imports {imp.target}: " + " -> ".join(chain))
                for n in nexts:
                    if n not in via:
                        via[n] = chain if n == imp.target else chain + [f"{n} (its __init__)"]
                        todo.append(n)
    return problems


def importers_of(root: Path, package: str, outside: str) -> set[str]:
    """The modules that import the outside package ``outside`` themselves (at any depth)."""
    _, graph = import_graph(root, package)
    return {mod for mod, imps in graph.items() if any(i.target == outside for i in imps)}


def import_cycles(root: Path, package: str) -> list[list[str]]:
    """The cycles of module-level imports: one cycle (a list of modules, first repeated last) per
    strongly connected component of more than one module, or of one module importing itself."""
    known, graph = import_graph(root, package)
    edges = {m: sorted({i.target for i in imps if i.at_load and i.target in known}) for m, imps in graph.items()}
    # Tarjan's strongly connected components.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in edges[v]:
                components.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    cycles = []
    for comp in components:  # one concrete cycle through the component's first module
        members, start = set(comp), comp[0]
        path, seen = [start], {start}
        while True:
            nxt = next((w for w in edges[path[-1]] if w == start and len(path) > 1 or w == start == path[-1]), None)
            if nxt is not None:
                cycles.append(path + [start])
                break
            nxt = next((w for w in edges[path[-1]] if w in members and w not in seen), None)
            if nxt is None:  # dead end inside the component: back up
                path.pop()
                if not path:
                    cycles.append(comp + [comp[0]])
                    break
                continue
            path.append(nxt)
            seen.add(nxt)
    return cycles


# --- the package -----------------------------------------------------------------------------------

LAYERS = ("inrcodec.format", "inrcodec.decoder")
PILLOW_MODULES = {"inrcodec.image", "inrcodec.pillow_plugin"}


def test_format_and_decoder_import_no_encoder_pillow_or_sklearn():
    problems = forbidden_imports(REPO, "inrcodec", LAYERS, ("inrcodec.encoder",), {"PIL", "sklearn"})
    assert not problems, "\n".join(problems)


def test_pillow_only_in_image_and_the_plugin():
    extra = importers_of(REPO, "inrcodec", "PIL") - PILLOW_MODULES
    assert not extra, f"PIL imported outside {sorted(PILLOW_MODULES)}: {sorted(extra)}"


def test_image_and_the_plugin_do_import_pillow():
    """The check above looks at the right names: the two modules that should import PIL do."""
    assert importers_of(REPO, "inrcodec", "PIL") >= PILLOW_MODULES


def test_no_import_cycle():
    cycles = import_cycles(REPO, "inrcodec")
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


# --- the checker itself, on a planted package ------------------------------------------------------


def _plant(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


PLANTED = {
    "pkg/__init__.py": "from pkg import facade\n",
    "pkg/facade.py": "import PIL\nfrom pkg.encoder import fit\n",
    "pkg/encoder/__init__.py": "",
    "pkg/encoder/fit.py": "import numpy\n",
    "pkg/format/__init__.py": "from pkg.format.clean import X\n",
    "pkg/format/clean.py": "import struct\nX = 1\n",
    "pkg/format/lazy.py": "def f():\n    from ..helpers import util\n    return util\n",
    "pkg/helpers/__init__.py": "import sklearn.svm\n",
    "pkg/helpers/util.py": "from pkg.encoder import fit  # noqa\n",
    "pkg/helpers/plain.py": "",
    "pkg/decoder/__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.encoder.fit\n",
    "pkg/decoder/ok.py": "import pkg.format.clean\nfrom pkg.helpers import plain\n",
    "pkg/a.py": "from pkg import b\n",
    "pkg/b.py": "import pkg.c\n",
    "pkg/c.py": "from . import a\n",
    "pkg/d.py": "def g():\n    import pkg.a\n",
    "pkg/e.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.d\n",
    "pkg/images.py": "from PIL import Image\n",
}


def test_checker_finds_planted_layering_violations(tmp_path):
    _plant(tmp_path, PLANTED)
    problems = forbidden_imports(tmp_path, "pkg", ("pkg.format", "pkg.decoder"), ("pkg.encoder",), {"PIL", "sklearn"})
    text = "\n".join(problems)
    # A function-level relative import, two levels deep: format.lazy -> helpers.util -> encoder.fit.
    assert "pkg.format.lazy imports pkg.encoder.fit: pkg.format.lazy -> pkg.helpers.util (line 2)" in text
    # A package's __init__ runs too: importing helpers.plain runs helpers/__init__, which imports sklearn.
    assert "pkg.decoder.ok imports sklearn: pkg.decoder.ok -> pkg.helpers.plain (line 2) -> pkg.helpers" in text
    # Imports under TYPE_CHECKING count for the layering (not for cycles).
    assert "pkg.decoder imports pkg.encoder.fit: pkg.decoder -> pkg.encoder.fit (line 3)" in text
    # The root package's __init__ (the facade with PIL) is not followed; clean modules pass.
    assert "PIL" not in text and not any(p.startswith("pkg.format.clean ") for p in problems)
    assert importers_of(tmp_path, "pkg", "PIL") == {"pkg.facade", "pkg.images"}


def test_checker_finds_a_planted_cycle(tmp_path):
    _plant(tmp_path, PLANTED)
    # a -> b -> c -> a at module level; d's function-level import and e's TYPE_CHECKING one do not count.
    assert import_cycles(tmp_path, "pkg") == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]
    _plant(tmp_path, {"pkg/c.py": "X = 1\n", "pkg/self.py": "import pkg.self\n"})
    assert import_cycles(tmp_path, "pkg") == [["pkg.self", "pkg.self"]]
    _plant(tmp_path, {"pkg/self.py": ""})
    assert import_cycles(tmp_path, "pkg") == []
