"""The kit's layout: packages by concern, each importing only the packages below it, and no import circle.

    values < contracts < runtime < security < storage < messaging < service < launch

(docs/architecture.md, "The kit"). A package may import a package to its left, never one to its right; inside a
package, modules import each other without a circle. Checked twice: from the source (every import statement,
those inside functions too), and by importing each package alone in a fresh interpreter.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

KIT = Path(__file__).resolve().parents[3] / "services" / "common"
LAYERS = ("values", "contracts", "runtime", "security", "storage", "messaging", "service", "launch")


def kit_modules() -> dict[str, Path]:
    """'storage.db' -> its file, for every module of every package."""
    return {f"{path.parent.name}.{path.stem}": path for path in sorted(KIT.glob("*/*.py")) if path.stem != "__init__"}


def kit_imports(module: str, path: Path) -> set[str]:
    """The kit modules `module` imports ('package.module'), wherever the import statement is."""
    package = module.split(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative to services.common.<package>
                base = ["services", "common", package][: 3 - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = [f"{target}.{alias.name}" for alias in node.names] + [target]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        for candidate in candidates:
            if candidate.startswith("services.common."):
                parts = candidate.split(".")[2:4]
                if len(parts) == 2 and f"{parts[0]}.{parts[1]}" in kit_modules():
                    found.add(f"{parts[0]}.{parts[1]}")
    found.discard(module)
    return found


def test_the_kit_is_packages_only():
    flat = sorted(p.name for p in KIT.glob("*.py") if p.name != "__init__.py")
    assert flat == [], f"modules outside a package: {flat}"
    packages = sorted(p.name for p in KIT.iterdir() if (p / "__init__.py").is_file())
    assert packages == sorted(LAYERS)


def test_each_package_imports_only_packages_below_it():
    upward = []
    for module, path in kit_modules().items():
        for imported in kit_imports(module, path):
            if LAYERS.index(imported.split(".")[0]) > LAYERS.index(module.split(".")[0]):
                upward.append(f"{module} imports {imported}")
    assert upward == []


def test_no_import_circle_between_modules():
    graph = {module: kit_imports(module, path) for module, path in kit_modules().items()}
    circles = []

    def visit(module, trail):
        if module in trail:
            circles.append(" -> ".join(trail[trail.index(module) :] + [module]))
            return
        if module in done:
            return
        for imported in sorted(graph[module]):
            visit(imported, trail + [module])
        done.add(module)

    done: set[str] = set()
    for module in graph:
        visit(module, [])
    assert circles == []


# each package alone in a fresh interpreter: what it loads of the kit must be itself and the packages below it
PROBE = """
import importlib, pkgutil, sys
package = importlib.import_module("services.common." + sys.argv[1])
for info in pkgutil.iter_modules(package.__path__):
    importlib.import_module(f"{package.__name__}.{info.name}")
print(sorted({name.split(".")[2] for name in sys.modules if name.startswith("services.common.")}))
"""


@pytest.mark.parametrize("package", LAYERS)
def test_a_package_imported_alone_loads_only_packages_below_it(package):
    done = subprocess.run(
        [sys.executable, "-c", PROBE, package], cwd=KIT.parents[1], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = set(ast.literal_eval(done.stdout.strip().splitlines()[-1]))
    assert loaded <= set(LAYERS[: LAYERS.index(package) + 1]), loaded


EVERY_MODULE = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module("services.common." + name)
print("ok")
"""


@pytest.mark.parametrize("order", ["top_down", "bottom_up", "by_name_reversed"])
def test_every_module_imports_in_any_order(order):
    """A circle between modules shows as a partly initialised module in some order of first imports."""
    modules = sorted(kit_modules(), key=lambda m: (LAYERS.index(m.split(".")[0]), m))
    if order == "top_down":
        modules.reverse()
    elif order == "by_name_reversed":
        modules = sorted(modules, key=lambda m: m.split(".")[1], reverse=True)
    done = subprocess.run(
        [sys.executable, "-c", EVERY_MODULE, *modules], cwd=KIT.parents[1], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr
