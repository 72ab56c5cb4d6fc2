"""Spark SQL (3.5 / 4.x, Databricks): ``translate_to_spark`` (its emitter, expression translator, ``USING csv``
views and ``INSERT OVERWRITE DIRECTORY`` output)."""
