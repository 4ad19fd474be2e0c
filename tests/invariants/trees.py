"""Input trees and R behaviours for the invariant harness: hypothesis strategies, and the tree made on disk.

A tree is a dated input folder of files whose first line says what the harness's R script does with them
(``behaviours.R``), under names from a hostile alphabet and at any depth, with links that stay inside it and links
that lead out of it, entries no listing may leave out silently (a FIFO, a link to nothing), files added after the
folder was registered and files changed after it was.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

# what the R script does with a file, and whether the file then succeeds
BEHAVIOURS = {
    "ok": True,
    "spawn": True,
    "outside": True,
    "error": False,
    "crash": False,
    "quit": False,
    "memory": False,
    "hang": False,
}
SUCCEEDING = {name for name, ok in BEHAVIOURS.items() if ok}
# names a hostile user picks: shell syntax, quotes, line breaks, markup, unicode, a leading dash or space
HOSTILE_NAMES = [
    "-leading dash",
    " leading space",
    "$(touch pwned)",
    "`id`",
    "a;b|c&d",
    'quote\'s "dq"',
    "a\nb",
    "tab\there",
    "\u2028ls",
    "<img src=x onerror=alert(1)>",
    "ünïcødé ✓",
    "*?[x]",
    "back\\slash",
    "%s%n",
    "..x",
    ".hidden",
    "CON",
    "a" * 120,
]
NAME = st.one_of(
    st.sampled_from(HOSTILE_NAMES),
    st.text(st.characters(exclude_characters="/\x00", exclude_categories=("Cs",)), min_size=1, max_size=12),
).filter(lambda name: name not in (".", "..") and len(name.encode("utf-8")) <= 200)


@dataclass(frozen=True)
class InputFile:
    """One regular file of the tree: its path (folders and name), what R does with it, and how many bytes follow."""

    parts: tuple[str, ...]
    behaviour: str
    padding: int

    @property
    def relative(self) -> str:
        return "/".join(self.parts)


@dataclass
class Tree:
    """What a tree holds besides its regular files, each as a path relative to the input folder."""

    files: list[InputFile]
    links_in: list[tuple[str, str]] = field(default_factory=list)  # (link, the file or folder inside it points to)
    links_out: list[str] = field(default_factory=list)  # to a secret outside the folder (a file, or the folder)
    odd_entries: list[str] = field(default_factory=list)  # a FIFO, a link to nothing
    late: list[InputFile] = field(default_factory=list)  # added after registration
    changed: list[str] = field(default_factory=list)  # of the files: appended to after registration
    touched: list[str] = field(default_factory=list)  # of the files: a new modification time, the same size


def _no_prefix_clash(files: list[InputFile]) -> bool:
    """No file's path is a folder of another's (``a`` and ``a/b``)."""
    paths = {f.relative for f in files}
    return not any("/".join(f.parts[:cut]) in paths for f in files for cut in range(1, len(f.parts)))


behaviours = st.sampled_from(sorted(BEHAVIOURS)).filter(lambda b: b != "hang") | st.just("ok")
input_file = st.builds(
    InputFile,
    st.lists(NAME, min_size=1, max_size=4).map(tuple),
    st.sampled_from(sorted(BEHAVIOURS)),
    st.integers(0, 4096),
)


@st.composite
def trees(draw: st.DrawFn) -> Tree:
    """A tree of 1 to 7 files (at most one that hangs: each costs the per-file timeout)."""
    files = draw(st.lists(input_file, min_size=1, max_size=7, unique_by=lambda f: f.relative).filter(_no_prefix_clash))
    hanging = [f for f in files if f.behaviour == "hang"]
    files = [f if f.behaviour != "hang" or f is hanging[0] else InputFile(f.parts, "ok", f.padding) for f in files]
    taken = {f.relative for f in files} | {"/".join(f.parts[:cut]) for f in files for cut in range(1, len(f.parts))}

    def fresh() -> str:
        """A name for a new top-level entry, unlike any taken (a suffix when the drawn one is)."""
        name = draw(NAME)
        name = name if name not in taken else f"{name}~{len(taken)}"
        taken.add(name)
        return name

    tree = Tree(files)
    for _ in range(draw(st.integers(0, 2))):  # links that stay inside: to a file, or to a file's folder
        target = draw(st.sampled_from(files))
        to_folder = len(target.parts) > 1 and draw(st.booleans())
        tree.links_in.append((fresh(), "/".join(target.parts[:-1]) if to_folder else target.relative))
    tree.links_out = [fresh() for _ in range(draw(st.integers(0, 2)))]
    tree.odd_entries = [fresh() for _ in range(draw(st.integers(0, 1)))]
    tree.late = [
        InputFile((fresh(),), draw(behaviours), draw(st.integers(0, 64))) for _ in range(draw(st.integers(0, 2)))
    ]
    regular = sorted(f.relative for f in files)
    tree.changed = draw(st.lists(st.sampled_from(regular), max_size=2, unique=True))
    rest = [relative for relative in regular if relative not in tree.changed]
    tree.touched = draw(st.lists(st.sampled_from(rest), max_size=1)) if rest else []
    return tree


def write_file(folder: Path, item: InputFile) -> None:
    path = folder.joinpath(*item.parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        f"{item.behaviour}\n".encode() + bytes(range(256)) * (item.padding // 256) + b"x" * (item.padding % 256)
    )


def make_tree(folder: Path, tree: Tree, secret: Path) -> None:
    """The tree on disk, its bad entries included (links out lead to ``secret`` or its folder)."""
    for item in tree.files:
        write_file(folder, item)
    for name, target in tree.links_in:
        os.symlink(folder / target, folder / name)
    for i, name in enumerate(tree.links_out):
        os.symlink(secret if i % 2 == 0 else secret.parent, folder / name)
    for i, name in enumerate(tree.odd_entries):
        if i % 2 == 0:
            os.mkfifo(folder / name)
        else:
            os.symlink(folder / "no such file", folder / name)


def remove_bad_entries(folder: Path, tree: Tree) -> None:
    for name in [*tree.links_out, *tree.odd_entries]:
        os.unlink(folder / name)


def behaviour_of(folder: Path, tree: Tree, relative: str) -> InputFile | None:
    """The tree file a registered path is (itself, or through links inside the folder), by its real path."""
    real = os.path.realpath(folder / relative)
    return next((f for f in tree.files if os.path.realpath(folder / f.relative) == real), None)


def change_after_registration(folder: Path, tree: Tree) -> None:
    """Files added, appended to and touched between the registration and the run."""
    for item in tree.late:
        write_file(folder, item)
    for relative in tree.changed:
        with open(folder / relative, "ab") as handle:
            handle.write(b"appended after registration")
    for relative in tree.touched:
        info = os.stat(folder / relative)
        os.utime(folder / relative, ns=(info.st_atime_ns, info.st_mtime_ns + 5_000_000_000))
