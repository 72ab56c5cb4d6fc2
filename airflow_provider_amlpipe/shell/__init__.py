"""The Airflow glue that is not an operator, sensor, trigger or hook: dataset Assets, extra links,
OpenLineage facets, run summaries. It may import Airflow; the core never imports it."""
