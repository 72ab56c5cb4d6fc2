"""U-SQL built-in types and their DuckDB equivalents."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_amlpipe.usql import nodes as n

#: U-SQL (C#) type name -> DuckDB type.
BUILTIN_TYPES: dict[str, str] = {
    "int": "INTEGER",
    "long": "BIGINT",
    "short": "SMALLINT",
    "byte": "UTINYINT",
    "sbyte": "TINYINT",
    "uint": "UINTEGER",
    "ulong": "UBIGINT",
    "ushort": "USMALLINT",
    "double": "DOUBLE",
    "float": "FLOAT",
    "decimal": "DECIMAL(38,10)",
    "bool": "BOOLEAN",
    "string": "VARCHAR",
    "char": "VARCHAR",
    "DateTime": "TIMESTAMP",
    "Guid": "UUID",
    "byte[]": "BLOB",
}

_ALIASES = {
    "Int32": "int", "Int64": "long", "Int16": "short", "Byte": "byte", "SByte": "sbyte", "UInt32": "uint",
    "UInt64": "ulong", "UInt16": "ushort", "Double": "double", "Single": "float", "Decimal": "decimal",
    "Boolean": "bool", "String": "string", "Char": "char", "System.DateTime": "DateTime", "System.Guid": "Guid",
    "System.String": "string", "System.Int32": "int", "System.Int64": "long", "System.Double": "double",
}  # fmt: skip

INTEGRAL = ("sbyte", "byte", "short", "ushort", "int", "uint", "long", "ulong")
NUMERIC = (*INTEGRAL, "float", "double", "decimal")
REFERENCE = ("string", "byte[]", "SqlArray", "SqlMap")


@dataclass(frozen=True)
class UType:
    """A resolved U-SQL type. ``nullable`` is C#'s: reference types (string) are always nullable."""

    name: str
    nullable: bool
    element: UType | None = None  # SqlArray<T> element, SqlMap value

    @property
    def is_numeric(self) -> bool:
        return self.name in NUMERIC

    @property
    def is_integral(self) -> bool:
        return self.name in INTEGRAL

    def with_nullable(self, nullable: bool) -> UType:
        if self.name in REFERENCE:
            return self
        return UType(self.name, nullable, self.element)

    def duckdb(self) -> str:
        if self.name == "SqlArray":
            return f"{self.element.duckdb() if self.element else 'VARCHAR'}[]"
        if self.name == "SqlMap":
            return f"MAP(VARCHAR, {self.element.duckdb() if self.element else 'VARCHAR'})"
        return BUILTIN_TYPES.get(self.name, "VARCHAR")

    def __str__(self) -> str:
        if self.name in ("SqlArray", "SqlMap") and self.element:
            return f"{self.name}<{self.element}>"
        return self.name + ("?" if self.nullable and self.name not in REFERENCE else "")


STRING = UType("string", True)
BOOL = UType("bool", False)
INT = UType("int", False)
LONG = UType("long", False)
DOUBLE = UType("double", False)
DATETIME = UType("DateTime", False)
UNKNOWN = UType("unknown", True)


def canonical(name: str) -> str | None:
    """The canonical U-SQL name of a type name, or None if it is not a built-in type."""
    name = _ALIASES.get(name, name)
    return name if name in BUILTIN_TYPES else None


def resolve(t: n.TypeRef) -> UType | None:
    """The UType of a written type, or None if it is not supported."""
    if t.name in ("SqlArray", "SqlMap", "Microsoft.Analytics.Types.Sql.SqlArray"):
        if not t.args:
            return None
        inner = resolve(t.args[-1])
        if inner is None:
            return None
        return UType(t.name.rsplit(".", 1)[-1], True, inner)
    name = canonical(t.name)
    if name is None:
        return None
    return UType(name, t.nullable or name in REFERENCE)


def promote(a: UType, b: UType) -> UType:
    """C# binary numeric promotion (lifted to nullable if either operand is)."""
    order = ["sbyte", "byte", "short", "ushort", "int", "uint", "long", "ulong", "float", "double"]
    nullable = a.nullable or b.nullable
    if "decimal" in (a.name, b.name):
        return UType("decimal", nullable)
    if a.name not in order or b.name not in order:
        return UType("unknown", True)
    name = order[max(order.index(a.name), order.index(b.name), order.index("int"))]
    return UType(name, nullable)
