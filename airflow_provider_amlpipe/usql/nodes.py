"""The intermediate form: one dataclass per U-SQL construct, shared by every emitter.

Expressions keep C# meaning (``==`` is C# equality, ``+`` may concatenate strings); an emitter
decides how each maps to its SQL dialect. Every node carries its source position for errors.

Over 600 lines on purpose: one small dataclass per construct of the language, which read best side by side.
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
    within_group: tuple[SortItem, ...] = ()  # PERCENTILE_CONT(p) WITHIN GROUP (ORDER BY x)
    type_args: tuple[TypeRef, ...] = ()  # ARRAY_AGG<string>(x), MAP_AGG<K,V>(k, v)


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
class Case:
    """``CASE [input] WHEN w THEN r ... [ELSE e] END``; ``operand`` is None in the searched form (WHEN cond)."""

    operand: Expr | None
    whens: tuple[tuple[Expr, Expr], ...]
    otherwise: Expr | None
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


@dataclass(frozen=True)
class Lambda:
    """A C# lambda ``p => body`` / ``(p, i) => body``: only the argument of a LINQ method (``x.Select(p => ...)``)."""

    params: tuple[str, ...]
    body: Expr
    pos: Pos
    #: the declared parameter types of an explicitly typed lambda ``(string w) => ...``; empty when implicit
    param_types: tuple[TypeRef, ...] = ()


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
    | Case
    | Cast
    | InList
    | Like
    | Between
    | IsNull
    | Star
    | Lambda
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


@dataclass(frozen=True)
class TvfCall:
    """``name(args)``: a table-valued function call (in FROM with ``AS alias``, as a query, in OUTPUT).

    ``args`` holds None where the call passes ``DEFAULT``.
    """

    function: TableName
    args: tuple[Expr | None, ...]
    alias: str | None
    pos: Pos
    script_bound: bool = False  # @f(args): a function declared in the script (DECLARE FUNCTION @f)


@dataclass(frozen=True)
class Pivot:
    """``source PIVOT (AGG(x) FOR col IN (value AS name, ...)) AS alias``."""

    source: Source
    aggregate: Call
    column: Name | Member
    values: tuple[tuple[Expr, str], ...]
    alias: str
    pos: Pos


@dataclass(frozen=True)
class Unpivot:
    """``source UNPIVOT [INCLUDE|EXCLUDE NULLS] (value FOR name IN (c1, ...)) AS alias``."""

    source: Source
    value: str
    name: str
    columns: tuple[str, ...]
    include_nulls: bool
    alias: str
    pos: Pos


Source = RowsetRef | SubquerySource | ValuesSource | Join | Explode | TableRef | TvfCall | Pivot | Unpivot


@dataclass(frozen=True)
class Select:
    items: tuple[SelectItem, ...]
    source: Source | None
    where: Expr | None
    group_by: tuple[Expr, ...]
    having: Expr | None
    distinct: bool
    pos: Pos
    hints: tuple[str, ...] = ()  # OPTION (...) query hints: accepted, no effect


@dataclass(frozen=True)
class SetOp:
    op: str  # UNION, EXCEPT, INTERSECT
    quantifier: str  # ALL or DISTINCT
    left: Query
    right: Query
    pos: Pos


@dataclass(frozen=True)
class ByNameSetOp:
    """``q1 [OUTER] UNION|EXCEPT|INTERSECT [ALL|DISTINCT] BY NAME [ON (c, ... [, *] | *)] q2``: columns matched by
    name; ``on`` None when there is no ON list; ``star`` for a ``*`` in it."""

    op: str
    quantifier: str
    left: Query
    right: Query
    on: tuple[str, ...] | None
    star: bool
    outer: bool
    pos: Pos


@dataclass(frozen=True)
class Extract:
    columns: tuple[tuple[str, TypeRef, Pos], ...]
    paths: tuple[Expr, ...]
    extractor: Udo
    pos: Pos
    hints: tuple[str, ...] = ()  # REQUIRED cols / SORTED BY cols: optimizer hints, no effect on the result


@dataclass(frozen=True)
class ExtractFileProperties:
    """An EXTRACT with file-property columns ``name = FILE.URI()`` (also MODIFIED, CREATED, LENGTH).

    ``extract.columns`` lists every column in order (a property column has its property's type); ``properties``
    maps those columns to the property (``URI`` ...). A separate node so emitters that lack it refuse it."""

    extract: Extract
    properties: tuple[tuple[str, str], ...]
    pos: Pos


@dataclass(frozen=True)
class Ordered:
    """A query with ``ORDER BY ... [OFFSET n ROWS] [FETCH [FIRST|NEXT] n ROWS [ONLY]]``."""

    query: Query
    order_by: tuple[SortItem, ...]
    offset: Expr | None
    fetch: Expr | None
    pos: Pos


@dataclass(frozen=True)
class Sample:
    """``query SAMPLE ANY (n) | UNIFORM (f)`` and ``SAMPLE rowset [ON cols] UNIFORM (f) | UNIVERSE (f) |
    DISTINCT (f, n) [WITH WEIGHT AS w]``."""

    query: Query
    method: str  # ANY, UNIFORM, UNIVERSE, DISTINCT
    args: tuple[Expr, ...]
    on: tuple[str, ...]
    weight: str | None
    pos: Pos


Query = (
    Select | SetOp | Extract | ExtractFileProperties | Ordered | RowsetRef | TableRef | TvfCall | Sample | ByNameSetOp
)


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
    expiration: Expr | None = None  # EXPIRATION expr (a DateTime or TimeSpan): when the file expires on ADLS


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
    partitioned_by: tuple[str, ...] = ()  # PARTITIONED [BY] (cols): a vertically partitioned table


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
    partition: tuple[Expr, ...] | None = None  # PARTITION (values)
    on_violation: str | None = None  # ON INTEGRITY VIOLATION IGNORE | MOVE
    move_to: tuple[Expr, ...] | None = None  # MOVE TO PARTITION (values)


@dataclass(frozen=True)
class Param:
    """A parameter of a function or procedure: ``@name Type [= default]``."""

    name: str
    type: TypeRef
    default: Expr | None
    pos: Pos


@dataclass(frozen=True)
class CreateView:
    """``CREATE VIEW [IF NOT EXISTS] name AS query``; ``text`` is the statement's U-SQL source (stored)."""

    name: TableName
    if_not_exists: bool
    query: Query
    text: str
    pos: Pos


@dataclass(frozen=True)
class CreateFunction:
    """``CREATE FUNCTION [IF NOT EXISTS] name(params) RETURNS @result [TABLE(cols)] AS BEGIN body END``.

    ``columns`` is None when the result's schema is not declared (inferred from the body).
    """

    name: TableName
    if_not_exists: bool
    params: tuple[Param, ...]
    result: str
    columns: tuple[tuple[str, TypeRef, Pos], ...] | None
    body: tuple[Statement, ...]
    text: str
    pos: Pos
    #: every returned rowset when RETURNS lists several, ``(@a [TABLE(...)], @b ...)``; empty for one rowset
    #: (``result`` / ``columns`` are then the first)
    results: tuple[tuple[str, tuple[tuple[str, TypeRef, Pos], ...] | None], ...] = ()


@dataclass(frozen=True)
class CreateProcedure:
    """``CREATE PROCEDURE [IF NOT EXISTS] name(params) AS BEGIN body END``."""

    name: TableName
    if_not_exists: bool
    params: tuple[Param, ...]
    body: tuple[Statement, ...]
    text: str
    pos: Pos


@dataclass(frozen=True)
class CallProcedure:
    """``name(args);``: runs a procedure's body; ``args`` holds None for ``DEFAULT``."""

    procedure: TableName
    args: tuple[Expr | None, ...]
    pos: Pos
    script_bound: bool = False  # @p(args);: a procedure declared in the script (DECLARE PROCEDURE @p)


@dataclass(frozen=True)
class DropObject:
    """``DROP VIEW|FUNCTION|PROCEDURE [IF EXISTS] name`` and ``DROP SCHEMA [IF EXISTS] name``."""

    kind: str  # VIEW, FUNCTION, PROCEDURE, SCHEMA
    name: TableName  # for SCHEMA: the schema name in ``name``
    if_exists: bool
    pos: Pos


@dataclass(frozen=True)
class CreateSchema:
    name: str
    if_not_exists: bool
    pos: Pos


@dataclass(frozen=True)
class UseSchema:
    """``USE SCHEMA name``: unqualified names resolve in this schema of the current database."""

    name: str
    pos: Pos


@dataclass(frozen=True)
class TruncateTable:
    """``TRUNCATE TABLE t [PARTITION (values), ...]``."""

    table: TableName
    partitions: tuple[tuple[Expr, ...], ...]
    pos: Pos


@dataclass(frozen=True)
class AlterPartitions:
    """``ALTER TABLE t ADD [IF NOT EXISTS] | DROP [IF EXISTS] PARTITION (values), ...``."""

    table: TableName
    add: bool
    if_flag: bool  # IF NOT EXISTS (ADD) / IF EXISTS (DROP)
    partitions: tuple[tuple[Expr, ...], ...]
    pos: Pos


@dataclass(frozen=True)
class TableNote:
    """A statement about an existing table with no local effect (``ALTER TABLE t REBUILD``,
    ``CREATE CLUSTERED INDEX i ON t (...)``): the table must exist."""

    table: TableName
    text: str
    pos: Pos


@dataclass(frozen=True)
class If:
    """``IF cond THEN stmts {ELSEIF cond THEN stmts} [ELSE stmts] END``: conditions are folded at compile time and
    only the statements of the branch taken are compiled."""

    branches: tuple[tuple[Expr, tuple[Statement, ...]], ...]
    otherwise: tuple[Statement, ...]
    pos: Pos


@dataclass(frozen=True)
class DeclareObject:
    """``DECLARE FUNCTION|PROCEDURE|VIEW @name ...``: a script-bound object, used as ``@name(args)`` / ``@name``.

    ``definition`` is the equivalent CREATE statement, named ``name`` (without ``@``)."""

    definition: CreateFunction | CreateProcedure | CreateView
    pos: Pos


@dataclass(frozen=True)
class MultiAssign:
    """``(@a, @b) = f(args);``: the rowsets returned by a function with several results, in RETURNS order."""

    names: tuple[str, ...]
    call: TvfCall
    pos: Pos


Statement = (
    Declare
    | Assign
    | Output
    | Ignored
    | UseDatabase
    | CreateDatabase
    | DropDatabase
    | CreateTable
    | DropTable
    | Insert
    | CreateView
    | CreateFunction
    | CreateProcedure
    | CallProcedure
    | DropObject
    | CreateSchema
    | UseSchema
    | TruncateTable
    | AlterPartitions
    | TableNote
    | If
    | DeclareObject
    | MultiAssign
)


@dataclass
class Script:
    statements: list[Statement] = field(default_factory=list)
