"""The repository runs and tests from a clone with nothing beside it: no tracked file refers to a path outside it.

Checked in every tracked text file (code, configuration, scripts, tests, docs):
- no absolute path into the machine's own layout (`/work/...`) or into the folder that holds the checkout;
- no `../` path that climbs out of the repository (Markdown links are resolved from their page, everything else
  from the repository root and from the file's folder), no `".."` path component in code, and no mention of
  the `shared/standards` source folder;
- no `Path(__file__).parents[n]` / `.parent.parent...` that reaches above the repository root.
.ci/run proves the same by running the suite from a fresh `git clone` in an empty temporary folder.
"""

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

TEXT_SUFFIXES = {".py", ".yml", ".yaml", ".toml", ".json", ".md", ".sh", ".txt", ".cfg", ".ini", ".mako", ".csv"}
TEXT_NAMES = {"Makefile", "Dockerfile", "run", "ensure-backing-services", ".dockerignore", ".gitignore"}
# the published standards are copied byte for byte; their URLs are not paths of ours
# (and this file names the patterns it looks for)
SKIPPED = ("services/reporting/standards/", "tests/unit/test_self_contained.py")
# strings that name a path outside the repository on purpose: hostile input the services must refuse
HOSTILE_INPUT = {
    ("reliability/fuzz.py", "../../etc/passwd"),
    ("tests/integration/test_calls_lifecycle.py", "../../../../etc/passwd"),
}

CLIMB = re.compile(r"(?:\.\./)+[^\s\"'`)\]<>,;]*")
DOTDOT_COMPONENT = re.compile(r"""(?<![\w"'])["']\.\.["'](?![\w"'])""")  # the string "..", not "0".."1"
FILE_PARENTS = re.compile(r"__file__\)(?:\.resolve\(\))?\.parents\[(\d+)\]")
FILE_PARENT_CHAIN = re.compile(r"__file__\)(?:\.resolve\(\))?((?:\.parent)+)")
# the machine's work folder, the standards' source folder and the folder beside the checkout, with either
# separator (the last wherever it is written, docs included)
MACHINE_PATHS = tuple(re.compile(p) for p in (r"/work/", r"shared[/\\]standards", r"\.\.[/\\]shared"))


def tracked_files() -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
        names = [n for n in listed.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # an export without git: every file but the local ones
        names = [
            str(p.relative_to(REPO))
            for p in REPO.rglob("*")
            if p.is_file() and not {".git", ".venv", "var", "__pycache__"} & set(p.relative_to(REPO).parts)
        ]
    return [
        REPO / n
        for n in names
        if not n.startswith(SKIPPED)
        and (Path(n).suffix in TEXT_SUFFIXES or Path(n).name in TEXT_NAMES)
        and (REPO / n).is_file()
    ]


def escapes(base: Path, relative: str) -> bool:
    target = (base / relative).resolve()
    return target != REPO and REPO not in target.parents


def problems_in(path: Path) -> list[str]:
    name = path.relative_to(REPO).as_posix()
    text = path.read_text(encoding="utf-8", errors="replace")
    found = []
    outside_prefix = str(REPO.parent).rstrip("/") + "/"
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{name}:{number}"
        for marker in MACHINE_PATHS:
            if marker.search(line):
                found.append(f"{where}: names {marker.search(line).group(0)!r} (outside the repository)")
        if outside_prefix != "/" and outside_prefix in line.replace(str(REPO) + "/", ""):
            found.append(f"{where}: absolute path beside the checkout ({outside_prefix}...)")
        for match in CLIMB.finditer(line):
            climb = match.group(0)
            if (name, climb) in HOSTILE_INPUT:
                continue
            bases = [path.parent] if path.suffix == ".md" else [REPO, path.parent]
            if any(escapes(base, climb) for base in bases):
                found.append(f"{where}: {climb!r} leads outside the repository")
        if path.suffix == ".py" and DOTDOT_COMPONENT.search(line):
            found.append(f"{where}: a '..' path component")
        depth = len(path.relative_to(REPO).parts) - 1  # parents[depth] is the repository root
        for match in FILE_PARENTS.finditer(line):
            if int(match.group(1)) > depth:
                found.append(f"{where}: parents[{match.group(1)}] of {name} is above the repository")
        for match in FILE_PARENT_CHAIN.finditer(line):
            if match.group(1).count(".parent") - 1 > depth:
                found.append(f"{where}: {match.group(1)} of {name} is above the repository")
    return found


def test_no_tracked_file_refers_to_a_path_outside_the_repository():
    files = tracked_files()
    assert len(files) > 100, "the scan found almost nothing: is this the repository?"
    problems = [p for path in files for p in problems_in(path)]
    assert not problems, "\n".join(problems)


def test_the_check_catches_what_it_is_for(tmp_path, monkeypatch):
    """Each kind of reference outside the repository is reported (the check cannot pass by looking at nothing)."""
    fake_repo = tmp_path / "checkout"
    (fake_repo / "tests" / "unit").mkdir(parents=True)
    monkeypatch.setattr(__import__(__name__), "REPO", fake_repo)
    module = fake_repo / "tests" / "unit" / "conftest.py"
    module.write_text(
        'SCHEMA = ROOT / ".." / "shared" / "x.xsd"\n'
        'DEFAULT = "../other/standards"\n'
        "ROOT = Path(__file__).resolve().parents[3]\n"
        "UP = Path(__file__).parent.parent.parent.parent\n"
        'OK = Path(__file__).resolve().parents[2] / "services"\n'
        f'SIBLING = "{tmp_path}/sibling/file.json"\n'
        'SOURCE = "/work/shared/standards/iati-2.03"\n'
    )
    doc = fake_repo / "docs" / "api"
    doc.mkdir(parents=True)
    (doc / "page.md").write_text("[fine](../access.md) and [not](../../../elsewhere.md)\n")
    found = "\n".join(problems_in(module) + problems_in(doc / "page.md"))
    assert "'..' path component" in found and "conftest.py:1" in found
    assert "'../other/standards' leads outside" in found
    assert "parents[3]" in found and ".parent.parent.parent.parent" in found
    assert "conftest.py:5" not in found
    assert "absolute path beside the checkout" in found and "conftest.py:6" in found
    assert "names '/work/'" in found and "names 'shared/standards'" in found
    assert "'../../../elsewhere.md' leads outside" in found and "../access.md" not in found
