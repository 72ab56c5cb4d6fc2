"""C# expressions -> SQL, the part every dialect shares: name resolution, typing, which C# members exist and how
they are checked, and the dispatch to the dialect's rendering.

A dialect's translator (``dialects/<name>/exprs.py``) subclasses :class:`Translator` (the model is sqlglot's
``Generator`` and its dialect subclasses): it declares its SQL for C# members as data (``TEMPLATES``, keyed
``"Type.Member"``; ``MATH_FUNCTIONS``; ``AGGREGATE_FUNCTIONS``), overrides the render hooks whose SQL is not a
template, and inherits the standard SQL the base writes. A member the C# side knows but the dialect has no SQL for is
refused through the one path, :meth:`~.translate_base.TranslatorBase.unsupported` ("cannot be translated to
<dialect>: ..."); a member nobody knows is an error of the script ("... is not supported"), the same in every
dialect.

The parts, each a subclass of the one before: :mod:`.translate_base` (leaves, members, render hooks),
:mod:`.translate_ops` (operators, SQL functions, aggregates), :mod:`.translate_calls` (calls and constructors).
"""

from __future__ import annotations

from airflow_provider_amlpipe.usql.translate_base import non_column_type as non_column_type
from airflow_provider_amlpipe.usql.translate_calls import Calls


class Translator(Calls):
    """Translates expressions within one scope. ``variable`` resolves ``@name`` to typed SQL."""
