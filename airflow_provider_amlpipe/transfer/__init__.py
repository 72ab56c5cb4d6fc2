"""Data transfer between datastores and SQL databases (the core of ``DataTransferStepOperator``).

No Airflow here: :mod:`.refs` declares the ends, :mod:`.files` copies files between datastores
(with :mod:`.blob` for Azure Blob), :mod:`.sql` exports and imports rows, :mod:`.journal` lets an
interrupted transfer resume, :mod:`.progress` reports how far it got.
"""
