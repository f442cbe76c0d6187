"""No compiled kernel reads a module-level value that depends on the machine.

numba freezes the module-level numbers, strings, tuples and arrays that a
compiled function reads into its machine code, and its cache does not track
them.  A value computed at import, from the core count, the environment or
numba's configuration, would be frozen as the compiling process saw it and
reused by every later process that loads the cache: the core count once
froze a slot layout that later processes on fewer cores ran past.  So every
such global must be written in the source from literals alone.  (The
``overload`` implementations in ``nnjit/blas.py`` and ``nnjit/exponential.py``
take their constants from the argument types as they compile.)
"""

from __future__ import annotations

import ast
import importlib
import numbers
import pkgutil
import types
from pathlib import Path

import numpy as np
from numba.core.dispatcher import Dispatcher

import nnjit

FROZEN = (numbers.Number, np.ndarray, np.generic, str, bytes, tuple)


def global_names(code: types.CodeType) -> set[str]:
    """The global names read by ``code`` and the functions defined inside it."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= global_names(const)
    return names


def frozen_globals() -> dict[tuple[str, str], list[str]]:
    """Every (module, name) of a value compiled code would freeze: the functions that read it."""
    found: dict[tuple[str, str], list[str]] = {}
    for info in pkgutil.iter_modules(nnjit.__path__):
        module = importlib.import_module(f"nnjit.{info.name}")
        for name, obj in vars(module).items():
            if not isinstance(obj, Dispatcher) or obj.py_func.__module__ != module.__name__:
                continue
            scope = obj.py_func.__globals__
            for used in global_names(obj.py_func.__code__):
                if used in scope and isinstance(scope[used], FROZEN):
                    found.setdefault((module.__name__, used), []).append(name)
    return found


class Definitions:
    """Module-level assignments and ``from nnjit... import`` names of nnjit's modules."""

    def __init__(self) -> None:
        self.trees: dict[str, ast.Module] = {}

    def tree(self, module: str) -> ast.Module:
        if module not in self.trees:
            path = Path(nnjit.__file__).parent / f"{module.split('.')[-1]}.py"
            self.trees[module] = ast.parse(path.read_text())
        return self.trees[module]

    def is_literal(self, module: str, name: str, seen: frozenset = frozenset()) -> bool:
        """Whether ``name`` in ``module`` is written from literals and other such names only."""
        if (module, name) in seen:
            return False
        seen = seen | {(module, name)}
        for node in self.tree(module).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nnjit"):
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        return self.is_literal(node.module, alias.name, seen)
            targets = []
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            for target in targets:
                if name in {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}:
                    return self.expression_is_literal(module, value, seen)
        return False

    def expression_is_literal(self, module: str, node: ast.expr, seen: frozenset) -> bool:
        if isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.Name):
            return self.is_literal(module, node.id, seen)
        if isinstance(node, ast.Tuple):
            return all(self.expression_is_literal(module, e, seen) for e in node.elts)
        if isinstance(node, ast.BinOp):
            return self.expression_is_literal(
                module, node.left, seen
            ) and self.expression_is_literal(module, node.right, seen)
        if isinstance(node, ast.UnaryOp):
            return self.expression_is_literal(module, node.operand, seen)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return node.func.id == "range" and all(
                self.expression_is_literal(module, a, seen) for a in node.args
            )
        return False


def test_compiled_code_reads_only_literal_globals():
    found = frozen_globals()
    assert ("nnjit.dense", "BLAS_MIN_ROWS") in found  # the search sees them
    definitions = Definitions()
    computed = {key: readers for key, readers in found.items() if not definitions.is_literal(*key)}
    assert not computed, f"compiled code reads values computed at import: {computed}"


def test_the_check_catches_a_value_computed_at_import():
    """The core count behind ``MAX_BLOCKS`` is what the rule is for."""
    definitions = Definitions()
    assert not definitions.is_literal("nnjit.dense", "MAX_BLOCKS")
    assert definitions.is_literal("nnjit.dense", "WEIGHT_SCALES")  # FINITE + BLOCK_LIMIT
    assert definitions.is_literal("nnjit.propagation", "ZERO")  # ZERO, ... = range(10)
