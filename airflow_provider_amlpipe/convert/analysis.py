"""Static analysis of AML SDK v1 code: which names hold which AML objects, without running anything.

Module-level statements are followed in order (``if`` / ``try`` / ``with`` / ``for`` bodies too, once,
as written). Each call whose callee resolves to an ``azureml`` import, or to a method of an object
built from one, is *accounted for*: handled by a rule in :mod:`.rules` (mapped), or reported with a
reason. :attr:`Analyzer.accounted` records each such call's position, so a test can check none is
dropped silently.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_amlpipe.convert.model import Issue


@dataclass(frozen=True)
class AmlName:
    """A name imported from azureml (a module, class or function), by its dotted path."""

    path: str

    @property
    def short(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    def attr(self, name: str) -> AmlName:
        return AmlName(f"{self.path}.{name}")


@dataclass(eq=False)
class Obj:
    """An AML object the code built: ``kind`` says what it is, ``fields`` what it was given."""

    kind: str
    node: ast.AST
    fields: dict[str, Any] = field(default_factory=dict)
    #: The variable it was first bound to (a step's Python name in the DAG).
    var: str | None = None

    @property
    def line(self) -> int:
        return getattr(self.node, "lineno", 0)


@dataclass(frozen=True)
class Unknown:
    """A value the analysis cannot know statically; ``text`` is its source."""

    text: str
    line: int


#: Method calls that inspect or drive a run interactively: dropped, with this reason.
INTERACTIVE = "the Airflow UI, task logs and `amlpipe runs show` show a run; nothing to put in a DAG file"


class Analyzer:
    """Evaluate a module's statements; the rules are looked up in :mod:`.rules` by AML name."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.env: dict[str, Any] = {}
        self.star_modules: list[str] = []
        self.issues: list[Issue] = []
        #: (line, col) of every AML call, mapped or reported.
        self.accounted: set[tuple[int, int]] = set()
        #: Every AML object built, in order (steps, pipelines, schedules, ...).
        self.objects: list[Obj] = []
        #: Names bound from expressions that mention AML names (``runs = list(run.get_children())``), even
        #: when their value is not known: a call through one is an AML call the rules did not map.
        #: Each maps to whether it came from a run-side object (a run, its outputs, a REST response).
        self.tainted: dict[str, bool] = {}

    # -- reporting -------------------------------------------------------------------------
    def todo(self, node: ast.AST, message: str) -> None:
        self.issues.append(Issue(getattr(node, "lineno", 0), message, todo=True))

    def note(self, node: ast.AST, message: str, *, in_dag: bool = False) -> None:
        self.issues.append(Issue(getattr(node, "lineno", 0), message, todo=False, in_dag=in_dag))

    def text(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.source, node) or ast.dump(node)

    def account(self, node: ast.AST) -> None:
        self.accounted.add((getattr(node, "lineno", 0), getattr(node, "col_offset", 0)))

    def new(self, kind: str, node: ast.AST, /, **fields: Any) -> Obj:
        obj = Obj(kind, node, dict(fields))
        self.objects.append(obj)
        return obj

    # -- statements ------------------------------------------------------------------------
    def run(self, tree: ast.Module) -> None:
        self.block(tree.body)

    def block(self, body: list[ast.stmt]) -> None:
        for statement in body:
            self.statement(statement)

    def statement(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "azureml":
                    if alias.asname:
                        self.env[alias.asname] = AmlName(alias.name)
                    else:
                        self.env["azureml"] = AmlName("azureml")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.split(".")[0] == "azureml":
                for alias in node.names:
                    if alias.name == "*":
                        self.star_modules.append(module)
                    else:
                        self.env[alias.asname or alias.name] = AmlName(f"{module}.{alias.name}")
        elif isinstance(node, ast.Assign):
            value = self.eval(node.value)
            for target in node.targets:
                self.taint(target, node.value)
                self.assign(target, value, node)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self.taint(node.target, node.value)
            self.assign(node.target, self.eval(node.value), node)
        elif isinstance(node, ast.AugAssign):
            self.eval(node.value)
            if isinstance(node.target, ast.Name):
                self.env[node.target.id] = Unknown(self.text(node), node.lineno)
        elif isinstance(node, ast.Expr):
            self.eval(node.value)
        elif isinstance(node, (ast.If, ast.While)):
            self.eval(node.test)
            self.block(node.body)
            self.block(node.orelse)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            items = self.eval(node.iter)
            self.taint(node.target, node.iter)
            # A known list is walked as the loop does; the items of an AML collection (a run's
            # children, the compute targets) are taken to be objects like it, so their calls are seen.
            for item in items if isinstance(items, (list, tuple)) else [items]:
                value = item if isinstance(item, Obj) or isinstance(items, (list, tuple)) else None
                self.assign(
                    node.target, value if value is not None else Unknown(self.text(node.target), node.lineno), node
                )
                self.block(node.body)
            self.block(node.orelse)
        elif isinstance(node, ast.Try):
            self.block(node.body)
            for handler in node.handlers:
                self.block(handler.body)
            self.block(node.orelse)
            self.block(node.finalbody)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                value = self.eval(item.context_expr)
                if item.optional_vars is not None:
                    self.taint(item.optional_vars, item.context_expr)
                    self.assign(item.optional_vars, value, node)
            self.block(node.body)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.env[node.name] = Unknown(node.name, node.lineno)
            self.unfollowed(node)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.eval(child)

    def is_aml(self, name: str) -> bool:
        """Whether ``name`` holds, or was computed from, something of AML's."""
        return name in self.tainted or isinstance(self.env.get(name), (AmlName, Obj))

    def interactive(self, name: str) -> bool:
        """Whether ``name`` holds a run-side object (or something computed from those only)."""
        from airflow_provider_amlpipe.convert.rules import INTERACTIVE_KINDS

        value = self.env.get(name)
        return self.tainted.get(name, False) or (isinstance(value, Obj) and value.kind in INTERACTIVE_KINDS)

    def taint(self, target: ast.expr, value: ast.expr) -> None:
        names = {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        mentioned = [n.id for n in ast.walk(value) if isinstance(n, ast.Name) and self.is_aml(n.id)]
        for name in names:
            self.tainted.pop(name, None)
            if mentioned:
                # Anything computed from a run comes after the pipeline was submitted: run-side too.
                self.tainted[name] = any(self.interactive(m) for m in mentioned)

    def unfollowed(self, node: ast.AST) -> None:
        """Report the AML calls in a function or class body: the converter follows module-level code."""
        for child in ast.walk(node):
            root = isinstance(child, ast.Call) and _root_name(child.func)
            if isinstance(child, ast.Call) and root and self.is_aml(root):
                self.account(child)
                where = f"`def`/`class` {node.name!r}" if hasattr(node, "name") else "a comprehension or lambda"
                self.todo(
                    child,
                    f"`{self.text(child)}` is inside {where}: the converter follows module-level statements"
                    " only; write it out, or port it by hand",
                )

    def assign(self, target: ast.expr, value: Any, node: ast.AST) -> None:
        if isinstance(target, ast.Name):
            if isinstance(value, Obj) and value.var is None:
                value.var = target.id
            self.env[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            items = value if isinstance(value, (list, tuple)) and len(value) == len(target.elts) else None
            for index, element in enumerate(target.elts):
                line = getattr(node, "lineno", 0)
                self.assign(element, items[index] if items else Unknown(self.text(element), line), node)
        elif isinstance(target, ast.Attribute):
            base = self.eval(target.value)
            owner = base if isinstance(base, Obj) else _owner(self, target.value)
            if owner is not None:
                from airflow_provider_amlpipe.convert.rules import set_attribute

                set_attribute(self, owner, _attr_path(target), value, node)
        elif isinstance(target, ast.Subscript):
            self.eval(target.value)

    # -- expressions -----------------------------------------------------------------------
    def eval(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items = [self.eval(e) for e in node.elts]
            return tuple(items) if isinstance(node, ast.Tuple) else items
        if isinstance(node, ast.Dict):
            result: dict[Any, Any] = {}
            for key, value in zip(node.keys, node.values, strict=True):
                evaluated = self.eval(value)
                if key is None:
                    return Unknown(self.text(node), node.lineno)
                result[self.eval(key)] = evaluated
            return result
        if isinstance(node, ast.Name):
            if node.id in self.env:
                return self.env[node.id]
            for module in self.star_modules:
                from airflow_provider_amlpipe.convert.rules import known_name

                if known_name(node.id):
                    return AmlName(f"{module}.{node.id}")
            return Unknown(node.id, node.lineno)
        if isinstance(node, ast.Attribute):
            base = self.eval(node.value)
            if isinstance(base, AmlName):
                return base.attr(node.attr)
            if isinstance(base, Obj):
                from airflow_provider_amlpipe.convert.rules import get_attribute

                return get_attribute(self, base, node.attr, node)
            return Unknown(self.text(node), node.lineno)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp, ast.Lambda)):
            # Built once per item at run time: one static object would be a guess.
            self.unfollowed(node)
            return Unknown(self.text(node), node.lineno)
        if isinstance(node, ast.JoinedStr):
            parts: list[str] = []
            for value in node.values:
                inner = self.eval(value.value) if isinstance(value, ast.FormattedValue) else self.eval(value)
                if isinstance(value, ast.FormattedValue) and (value.format_spec or value.conversion != -1):
                    return Unknown(self.text(node), node.lineno)
                if not isinstance(inner, (str, int, float)) or isinstance(inner, bool):
                    return Unknown(self.text(node), node.lineno)
                parts.append(str(inner))
            return "".join(parts)
        if isinstance(node, ast.BinOp):
            left, right = self.eval(node.left), self.eval(node.right)
            if isinstance(node.op, ast.Add) and isinstance(left, str) and isinstance(right, str):
                return left + right
            if _number(left) and _number(right) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
                return {ast.Add: left + right, ast.Sub: left - right, ast.Mult: left * right}[type(node.op)]
            return Unknown(self.text(node), node.lineno)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            operand = self.eval(node.operand)
            return -operand if _number(operand) else Unknown(self.text(node), node.lineno)
        if isinstance(node, ast.Subscript):
            base = self.eval(node.value)
            key = self.eval(node.slice)
            if isinstance(base, (list, tuple)) and isinstance(key, int) and -len(base) <= key < len(base):
                return base[key]
            if isinstance(base, dict) and not isinstance(key, (Unknown, list, dict)) and key in base:
                return base[key]
            if isinstance(base, Obj):
                from airflow_provider_amlpipe.convert.rules import get_item

                return get_item(self, base, key, node)
            return Unknown(self.text(node), node.lineno)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.eval(child)
        return Unknown(self.text(node), getattr(node, "lineno", 0))

    def call(self, node: ast.Call) -> Any:
        from airflow_provider_amlpipe.convert import rules

        func = self.eval(node.func)
        args = [self.eval(a.value) if isinstance(a, ast.Starred) else self.eval(a) for a in node.args]
        kwargs = {k.arg: self.eval(k.value) for k in node.keywords if k.arg is not None}
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            if isinstance(func, AmlName) or _method_owner(self, node) is not None:
                self.account(node)
                self.todo(node, f"`{self.text(node)}`: *args / **kwargs cannot be read statically; spell them out")
            return Unknown(self.text(node), node.lineno)
        if isinstance(func, AmlName):
            self.account(node)
            return rules.construct(self, func, node, args, kwargs)
        owner = _method_owner(self, node)
        if owner is not None and isinstance(node.func, ast.Attribute):
            self.account(node)
            return rules.method(self, owner, node.func.attr, node, args, kwargs)
        root = _root_name(node.func)
        if root is not None and self.is_aml(root):
            self.account(node)
            if self.interactive(root):
                self.note(node, f"`{self.text(node)}` dropped: it reads a run ({root!r}); {INTERACTIVE}")
            else:
                self.todo(node, f"`{self.text(node)}`: not understood statically (through {root!r}); port it by hand")
            return Unknown(self.text(node), node.lineno)
        return _builtin(self, node, args, kwargs)


def _method_owner(analyzer: Analyzer, node: ast.Call) -> Obj | None:
    if not isinstance(node.func, ast.Attribute):
        return None
    base = analyzer.eval(node.func.value)
    return base if isinstance(base, Obj) else None


def _owner(analyzer: Analyzer, node: ast.expr) -> Obj | None:
    """The AML object at the root of an attribute chain (``run_config`` of ``run_config.environment.docker``)."""
    while isinstance(node, ast.Attribute):
        node = node.value
    value = analyzer.eval(node) if isinstance(node, ast.Name) else None
    return value if isinstance(value, Obj) else None


def _attr_path(node: ast.expr) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join(reversed(parts))


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _builtin(analyzer: Analyzer, node: ast.Call, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """The few plain-Python calls whose value a pipeline script needs: ``os.path.join``, ``str`` and
    ``os.getenv(name, default)`` (the default: a notebook's way to name a setting)."""
    text = analyzer.text(node.func)
    if text in ("os.path.join", "path.join") and args and all(isinstance(a, str) for a in args) and not kwargs:
        return os.path.join(*args)
    if text == "str" and len(args) == 1 and isinstance(args[0], (str, int, float)):
        return str(args[0])
    getenv = text in ("os.getenv", "os.environ.get", "getenv") and len(args) == 2 and not kwargs
    if getenv and isinstance(args[0], str) and isinstance(args[1], (str, int, float)):
        analyzer.note(node, f"environment variable {args[0]!r}: its default {args[1]!r} is used")
        return args[1]
    return Unknown(analyzer.text(node), node.lineno)
