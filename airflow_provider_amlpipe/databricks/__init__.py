"""Databricks steps: notebooks, Python scripts and jars; ``local_runner`` runs them on local PySpark."""
