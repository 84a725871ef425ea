"""The spec's scopes as a tree (groups, named repeats, definitions' expansions), and what each
scope reads, gives and holds: what decides whether it is a module of its own, an nn.Sequential,
or a container whose layers the enclosing forward calls."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..analysis import Analysis
from ..ir import INPUT, Scope
from .text import plain_attribute


@dataclass(eq=False)
class ScopeTree:
    name: str  # the rows' prefix: layer1.down; "" for the network
    record: Scope | None
    children: list = field(default_factory=list)  # ScopeTree or node index, in execution order
    nodes: list[int] = field(default_factory=list)  # every node index inside, in order



class Scopes:
    """The analysis's nodes grouped by scope."""

    def __init__(self, analysis: Analysis):
        self.analysis = analysis
        self.rows = analysis.rows
        self.nodes = analysis.nodes
        self.index = {node.name: i for i, node in enumerate(self.nodes)}
        self.readers: dict[str, list[int]] = {}
        for i, node in enumerate(self.nodes):
            for source in node.inputs:
                self.readers.setdefault(source, []).append(i)
        self.root = self._tree()
        self.trees: dict[str, ScopeTree] = {}
        self._index_trees(self.root)


    def _tree(self) -> ScopeTree:
        root = ScopeTree("", None)
        trees = {"": root}
        for i, node in enumerate(self.nodes):
            parent = root
            parent.nodes.append(i)
            for scope in node.scopes:
                tree = trees.get(scope.name)
                if tree is None:
                    tree = trees[scope.name] = ScopeTree(scope.name, scope)
                    parent.children.append(tree)
                tree.nodes.append(i)
                parent = tree
            parent.children.append(i)
        return root

    def _index_trees(self, tree: ScopeTree):
        self.trees[tree.name] = tree
        for child in tree.children:
            if isinstance(child, ScopeTree):
                self._index_trees(child)

    def _members(self, tree: ScopeTree) -> set[str]:
        return {self.nodes[i].name for i in tree.nodes}

    def _externals(self, tree: ScopeTree) -> list[str]:
        members, seen = self._members(tree), []
        for i in tree.nodes:
            for source in self.nodes[i].inputs:
                if source not in members and source not in seen:
                    seen.append(source)
        return seen

    def _closed(self, tree: ScopeTree) -> bool:
        """Only its last value is read from outside it: it can be one module with one output."""
        members = self._members(tree)
        return all(self.nodes[r].name in members for i in tree.nodes[:-1]
                   for r in self.readers.get(self.nodes[i].name, ()))

    def _units(self, tree: ScopeTree, prefix: str = "", containers=None):
        """(relative name, node index or closed subtree) in order; a subtree that is not closed
        is opened: its units join this scope's, reached through it as a container."""
        units = []
        for child in tree.children:
            if isinstance(child, ScopeTree):
                relative = prefix + _relative(child.name, tree.name)
                modules = self._has_modules(child)
                if self._closed(child) and modules:
                    units.append((relative, child))
                else:
                    if containers is not None and modules:
                        containers.append(relative)
                    units += self._units(child, relative + ".", containers)
            else:
                units.append((prefix + _relative(self.nodes[child].name, tree.name), child))
        return units

    def _has_modules(self, tree: ScopeTree) -> bool:
        """Whether a layer inside is a module, not an expression of forward (`a + b`)."""
        return any(self.nodes[i].layer.python_expression(self.rows[i].facts, ["x", "y"]) is None
                   for i in tree.nodes)

    def _sequential(self, tree: ScopeTree) -> bool:
        """A group whose units form a plain chain of modules: an nn.Sequential."""
        if tree.record is None or tree.record.kind == "definition":
            return False
        externals = self._externals(tree)
        if len(externals) != 1:
            return False
        previous = externals[0]
        for name, unit in self._units(tree):
            if isinstance(unit, ScopeTree):
                if self._externals(unit) != [previous] or not plain_attribute(name):
                    return False
                previous = self.nodes[unit.nodes[-1]].name
                continue
            node = self.nodes[unit]
            if node.inputs != (previous,) or node.layer.frozen or not plain_attribute(name) or \
                    node.layer.python_expression(self.rows[unit].facts, ["x"]) is not None:
                return False
            previous = node.name
        return True

    def _value_shape(self, name: str):
        return self.analysis.input if name == INPUT else self.rows[self.index[name]].output


def _relative(name: str, prefix: str) -> str:
    return name[len(prefix) + 1:] if prefix else name


