"""The Top layer step's file tree: the top layer's files, the edited and the offered ones."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from textual.widgets import Tree


class ToplayerTree(Tree[str | None]):
    """A tree of top-layer paths; a leaf's data is its relative path, a directory's None."""

    def show(self, files: Mapping[str, bytes], edits: Mapping[str, bytes],
             offered: Iterable[str]) -> None:
        """Rebuild: edited files marked ``*``, offered ones not there yet ``(new)``."""
        self.clear()
        dirs = {"": self.root}
        for rel in sorted({*files, *edits, *offered}):
            parts = rel.split("/")
            for i in range(1, len(parts)):
                key = "/".join(parts[:i])
                if key not in dirs:
                    dirs[key] = dirs["/".join(parts[:i - 1])].add(parts[i - 1] + "/",
                                                                  expand=True)
            mark = " *" if rel in edits else ("" if rel in files else " (new)")
            dirs["/".join(parts[:-1])].add_leaf(parts[-1] + mark, data=rel)
        self.root.expand()
