"""``amlpipe convert``: an AML SDK v1 pipeline script or notebook, read statically, as an Airflow DAG file.

The input is parsed with :mod:`ast` and never executed (azureml need not be installed). The
analysis resolves the names bound to AML objects, builds a :class:`~.model.PipelineModel` and the
emitter writes the DAG text. What cannot be converted faithfully is marked ``TODO(amlpipe convert)``
in the DAG and listed with its place in the input. No Airflow here.
"""

from __future__ import annotations

from airflow_provider_amlpipe.convert.convert import ConversionResult, convert_file, convert_source

__all__ = ["ConversionResult", "convert_file", "convert_source"]
