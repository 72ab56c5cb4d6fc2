"""The intermediate form: one dataclass per U-SQL construct, shared by every emitter.

Expressions keep C# meaning (``==`` is C# equality, ``+`` may concatenate strings); an emitter
decides how each maps to its SQL dialect. Every node carries its source position for errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pos:
    """A position in the script: 1-based line and column."""

    line: int
    column: int


@dataclass(frozen=True)
class TypeRef:
    """A written U-SQL type such as ``int?``, ``string``, ``SqlArray<string>``."""

    name: str
    nullable: bool
    pos: Pos
    args: tuple[TypeRef, ...] = ()


# ---------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Literal:
    """``value`` is Python-typed: str, int, float, bool, None; ``kind`` is the C# type name."""

    value: object
    kind: str  # int, long, double, float, decimal, string, char, bool, null
    pos: Pos


@dataclass(frozen=True)
class Name:
    """A bare identifier: a column, or a type/namespace name in a member access."""

    name: str
    pos: Pos


@dataclass(frozen=True)
class Variable:
    """``@name`` used as a scalar value."""

    name: str
    pos: Pos


@dataclass(frozen=True)
class Member:
    """``target.name`` (qualified column, property, or static member)."""

    target: Expr
    name: str
    pos: Pos


@dataclass(frozen=True)
class Call:
    """``func(args)``; ``func`` is a Name (SQL function / aggregate) or Member (C# method)."""

    func: Expr
    args: tuple[Expr, ...]
    pos: Pos
    distinct: bool = False
    star: bool = False  # COUNT(*)
    over: Window | None = None


@dataclass(frozen=True)
class Window:
    """``OVER (PARTITION BY ... ORDER BY ... [ROWS ...])``."""

    partition_by: tuple[Expr, ...]
    order_by: tuple[SortItem, ...]
    frame: str  # verbatim frame text, already validated, or ""
    pos: Pos


@dataclass(frozen=True)
class Index:
    """``target[index]``."""

    target: Expr
    index: Expr
    pos: Pos


@dataclass(frozen=True)
class New:
    """``new T(args)`` — DateTime, SqlArray<T>, Guid; ``new T{a, b}`` / ``new SqlMap<K,V>{{k, v}, ...}``.

    ``initializer`` holds the collection initializer's items (one expression per array element, two
    per map entry), or None when there is none.
    """

    type: TypeRef
    args: tuple[Expr, ...]
    pos: Pos
    initializer: tuple[tuple[Expr, ...], ...] | None = None


@dataclass(frozen=True)
class Unary:
    op: str  # ! - + ~ NOT
    operand: Expr
    pos: Pos


@dataclass(frozen=True)
class Binary:
    op: str  # C# operators, plus AND / OR
    left: Expr
    right: Expr
    pos: Pos


@dataclass(frozen=True)
class Conditional:
    cond: Expr
    then: Expr
    otherwise: Expr
    pos: Pos


@dataclass(frozen=True)
class Cast:
    type: TypeRef
    operand: Expr
    pos: Pos


@dataclass(frozen=True)
class InList:
    operand: Expr
    items: tuple[Expr, ...]
    negated: bool
    pos: Pos


@dataclass(frozen=True)
class Like:
    operand: Expr
    pattern: Expr
    negated: bool
    pos: Pos


@dataclass(frozen=True)
class Between:
    operand: Expr
    low: Expr
    high: Expr
    negated: bool
    pos: Pos


@dataclass(frozen=True)
class IsNull:
    operand: Expr
    negated: bool
    pos: Pos


@dataclass(frozen=True)
class Star:
    """``*`` or ``alias.*`` in a select list."""

    qualifier: str | None
    pos: Pos


Expr = (
    Literal
    | Name
    | Variable
    | Member
    | Call
    | Index
    | New
    | Unary
    | Binary
    | Conditional
    | Cast
    | InList
    | Like
    | Between
    | IsNull
    | Star
)


# ---------------------------------------------------------------- queries


@dataclass(frozen=True)
class SortItem:
    expr: Expr
    descending: bool


@dataclass(frozen=True)
class SelectItem:
    expr: Expr
    alias: str | None
    pos: Pos


@dataclass(frozen=True)
class RowsetRef:
    """``@rs [AS a]`` in a FROM clause."""

    name: str
    alias: str | None
    pos: Pos


@dataclass(frozen=True)
class SubquerySource:
    query: Query
    alias: str
    pos: Pos


@dataclass(frozen=True)
class ValuesSource:
    """``(VALUES (...), (...)) AS T(a, b)``."""

    rows: tuple[tuple[Expr, ...], ...]
    alias: str
    columns: tuple[str, ...]
    pos: Pos


@dataclass(frozen=True)
class Explode:
    """``CROSS APPLY EXPLODE(expr) AS T(col)``."""

    expr: Expr
    alias: str
    columns: tuple[str, ...]
    outer: bool
    pos: Pos


@dataclass(frozen=True)
class Join:
    kind: str  # INNER, LEFT, RIGHT, FULL, CROSS, SEMI, ANTI, LEFT SEMI, RIGHT SEMI, ...
    left: Source
    right: Source
    on: Expr | None
    pos: Pos


@dataclass(frozen=True)
class TableName:
    """``[database.][schema.]name`` of a managed table; missing parts are the current database / ``dbo``."""

    database: str | None
    schema: str | None
    name: str
    pos: Pos

    def __str__(self) -> str:
        return ".".join(p for p in (self.database, self.schema, self.name) if p)


@dataclass(frozen=True)
class TableRef:
    """A managed table read in FROM (or as a whole query / OUTPUT source)."""

    table: TableName
    alias: str | None
    pos: Pos


Source = RowsetRef | SubquerySource | ValuesSource | Join | Explode | TableRef


@dataclass(frozen=True)
class Select:
    items: tuple[SelectItem, ...]
    source: Source | None
    where: Expr | None
    group_by: tuple[Expr, ...]
    having: Expr | None
    distinct: bool
    pos: Pos


@dataclass(frozen=True)
class SetOp:
    op: str  # UNION, EXCEPT, INTERSECT
    quantifier: str  # ALL or DISTINCT
    left: Query
    right: Query
    pos: Pos


@dataclass(frozen=True)
class Extract:
    columns: tuple[tuple[str, TypeRef, Pos], ...]
    paths: tuple[Expr, ...]
    extractor: Udo
    pos: Pos


@dataclass(frozen=True)
class Ordered:
    """A query with ``ORDER BY ... [OFFSET n ROWS] [FETCH [FIRST|NEXT] n ROWS [ONLY]]``."""

    query: Query
    order_by: tuple[SortItem, ...]
    offset: Expr | None
    fetch: Expr | None
    pos: Pos


Query = Select | SetOp | Extract | Ordered | RowsetRef | TableRef


@dataclass(frozen=True)
class Udo:
    """``Extractors.Csv(name: value, ...)`` / ``Outputters.Text(...)``."""

    family: str  # Extractors / Outputters
    name: str  # Csv / Tsv / Text
    options: tuple[tuple[str, Expr, Pos], ...]
    pos: Pos


# ---------------------------------------------------------------- statements


@dataclass(frozen=True)
class Declare:
    name: str
    type: TypeRef
    value: Expr
    external: bool
    const: bool
    pos: Pos


@dataclass(frozen=True)
class Assign:
    """``@rs = <query>;``."""

    name: str
    query: Query
    pos: Pos


@dataclass(frozen=True)
class Output:
    source: Query
    path: Expr
    order_by: tuple[SortItem, ...]
    offset: Expr | None
    fetch: Expr | None
    outputter: Udo
    pos: Pos


@dataclass(frozen=True)
class Ignored:
    """A statement with no effect locally (``SET @@FeaturePreviews``, ``USE DATABASE master``)."""

    text: str
    pos: Pos


@dataclass(frozen=True)
class UseDatabase(Ignored):
    """``USE DATABASE name;`` (a subclass of :class:`Ignored` so emitters without a catalog can skip it)."""

    database: str = "master"


@dataclass(frozen=True)
class CreateDatabase:
    name: str
    if_not_exists: bool
    pos: Pos


@dataclass(frozen=True)
class DropDatabase:
    name: str
    if_exists: bool
    pos: Pos


@dataclass(frozen=True)
class CreateTable:
    """``CREATE TABLE [IF NOT EXISTS] t (cols, INDEX ...) | t [(INDEX ...)] AS query``.

    ``columns`` is empty for CREATE TABLE ... AS; ``notes`` lists the clauses accepted but without local
    effect (INDEX, PARTITIONED BY, DISTRIBUTED BY).
    """

    table: TableName
    if_not_exists: bool
    columns: tuple[tuple[str, TypeRef, Pos], ...]
    query: Query | None
    notes: tuple[str, ...]
    pos: Pos


@dataclass(frozen=True)
class DropTable:
    table: TableName
    if_exists: bool
    pos: Pos


@dataclass(frozen=True)
class Insert:
    """``INSERT INTO t [(c, ...)] query``; columns are matched by position."""

    table: TableName
    columns: tuple[str, ...]
    query: Query
    pos: Pos


Statement = (
    Declare | Assign | Output | Ignored | UseDatabase | CreateDatabase | DropDatabase | CreateTable | DropTable | Insert
)


@dataclass
class Script:
    statements: list[Statement] = field(default_factory=list)
