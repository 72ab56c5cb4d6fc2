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
    "Byte[]": "byte[]",
}  # fmt: skip

#: Spellings of the complex types: ``SQL.ARRAY<T>`` / ``SQL.MAP<K,V>`` are U-SQL's aliases of SqlArray / SqlMap.
_COLLECTIONS = {
    "SqlArray": "SqlArray", "SQL.ARRAY": "SqlArray", "Microsoft.Analytics.Types.Sql.SqlArray": "SqlArray",
    "SqlMap": "SqlMap", "SQL.MAP": "SqlMap", "Microsoft.Analytics.Types.Sql.SqlMap": "SqlMap",
}  # fmt: skip

STRING_NAME = "string"
INTEGRAL = ("sbyte", "byte", "short", "ushort", "int", "uint", "long", "ulong")
NUMERIC = (*INTEGRAL, "float", "double", "decimal")
REFERENCE = ("string", "byte[]", "SqlArray", "SqlMap")


@dataclass(frozen=True)
class UType:
    """A resolved U-SQL type. ``nullable`` is C#'s: reference types (string) are always nullable."""

    name: str
    nullable: bool
    element: UType | None = None  # SqlArray<T> element, SqlMap value
    key: UType | None = None  # SqlMap key
    array: bool = False  # a C# array (``T[]``: Split's result, ``new T[]{...}``) rather than a SqlArray<T>

    @property
    def is_numeric(self) -> bool:
        return self.name in NUMERIC

    @property
    def is_integral(self) -> bool:
        return self.name in INTEGRAL

    def with_nullable(self, nullable: bool) -> UType:
        if self.name in REFERENCE:
            return self
        return UType(self.name, nullable, self.element, self.key)

    def duckdb(self) -> str:
        if self.name == "SqlArray":
            return f"{self.element.duckdb() if self.element else 'VARCHAR'}[]"
        if self.name in ("SqlMap", "KeyValuePair"):
            k = self.key.duckdb() if self.key else "VARCHAR"
            v = self.element.duckdb() if self.element else "VARCHAR"
            return f"MAP({k}, {v})" if self.name == "SqlMap" else f"STRUCT(key {k}, value {v})"
        return BUILTIN_TYPES.get(self.name, "VARCHAR")

    def __str__(self) -> str:
        if self.name in ("SqlMap", "KeyValuePair") and self.element:
            return f"{self.name}<{self.key or STRING_NAME},{self.element}>"
        if self.name == "SqlArray" and self.element:
            return f"{self.element}[]" if self.array else f"SqlArray<{self.element}>"
        return self.name + ("?" if self.nullable and self.name not in REFERENCE else "")


STRING = UType("string", True)
BOOL = UType("bool", False)
INT = UType("int", False)
LONG = UType("long", False)
DOUBLE = UType("double", False)
DATETIME = UType("DateTime", False)
UNKNOWN = UType("unknown", True)


def array_of(element: UType) -> UType:
    """The C# array ``element[]``: indexed like a SqlArray; ``.Length`` (and, as before, ``.Count``) is its size."""
    return UType("SqlArray", True, element, array=True)


def canonical(name: str) -> str | None:
    """The canonical U-SQL name of a type name (C# keyword, .NET name, ``System.``-qualified), or None."""
    name = name.removeprefix("System.")
    name = _ALIASES.get(name, name)
    return name if name in BUILTIN_TYPES else None


def collection(name: str) -> str | None:
    """``SqlArray`` / ``SqlMap`` for any spelling of the complex types (``SQL.ARRAY``...), else None."""
    return _COLLECTIONS.get(name)


def resolve(t: n.TypeRef) -> UType | None:
    """The UType of a written type, or None if it is not supported."""
    short = collection(t.name)
    if short is not None:
        if len(t.args) != (2 if short == "SqlMap" else 1):
            return None
        inner = resolve(t.args[-1])
        key = resolve(t.args[0]) if short == "SqlMap" else None
        if inner is None or (short == "SqlMap" and key is None):
            return None
        return UType(short, True, inner, key)
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


_WIDENING = {
    "sbyte": ("short", "int", "long", "float", "double", "decimal"),
    "byte": ("short", "ushort", "int", "uint", "long", "ulong", "float", "double", "decimal"),
    "short": ("int", "long", "float", "double", "decimal"),
    "ushort": ("int", "uint", "long", "ulong", "float", "double", "decimal"),
    "int": ("long", "float", "double", "decimal"),
    "uint": ("long", "ulong", "float", "double", "decimal"),
    "long": ("float", "double", "decimal"),
    "ulong": ("float", "double", "decimal"),
    "float": ("double",),
}


def assignable(src: UType, dst: UType) -> bool:
    """C# implicit conversion of a column value into a table column (T -> T?, numeric widening)."""
    if src.nullable and not dst.nullable and src.name not in REFERENCE:
        return False
    if src.name == dst.name:
        return src.name not in ("SqlArray", "SqlMap") or str(src) == str(dst)
    return dst.name in _WIDENING.get(src.name, ())
