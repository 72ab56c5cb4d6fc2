"""The SQL dialects the U-SQL compiler writes: each a package of its own (``duckdb``, ``spark``), siblings that
share only the dialect-neutral layer of :mod:`airflow_provider_amlpipe.usql` (docs/usql-dialects.md)."""
