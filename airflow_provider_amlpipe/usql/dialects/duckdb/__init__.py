"""DuckDB, the local engine: ``compile_script`` / ``run_script`` (its emitter, expression translator, catalog files,
``read_csv`` extraction, ``COPY`` output and the prelude macros)."""
