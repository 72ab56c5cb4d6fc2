"""AML notebook "use Databricks as compute target", ported: the DBFS script and jar variants.

As in the notebook, the code is put on DBFS first (``upload_to_databricks``), then the steps name it by its
DBFS path: ``train-db-dbfs.py`` as ``python_script_path``, and ``wordcount.jar`` (built here from
``WordCount.java`` with the JDK and PySpark's Hadoop jars; byte-for-byte the same on every build) in
``jar_libraries`` with ``main_class_name``. Each step gets ``--input`` / ``--output`` after its own
arguments and is fingerprinted by the uploaded file's content, so an unchanged rerun is reused.

Locally (the default) DBFS is a folder of the worker (``[amlpipe] local_dbfs_root``, default
``$AIRFLOW_HOME/amlpipe/dbfs``); the script runs on PySpark in local mode and the jar with PySpark's
``spark-submit``. Set the environment variable ``AMLPIPE_DATABRICKS_COMPUTE`` to an ``amlpipe_databricks``
connection id to upload to and run on that workspace (inputs then on Azure storage, see docs/databricks.md).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import zipfile
from pathlib import Path

from airflow.sdk import DAG, task

from airflow_provider_amlpipe import DatabricksStepOperator, DataPath, Output
from airflow_provider_amlpipe.hooks.databricks import upload_to_databricks

COMPUTE = os.environ.get("AMLPIPE_DATABRICKS_COMPUTE", "local")
CODE = Path(__file__).parent / "scripts" / "databricks"
SCRIPT_PATH = "dbfs:/aml-pipelines-demo/train-db-dbfs.py"
JAR_PATH = "dbfs:/aml-pipelines-demo/wordcount.jar"
DATA = DataPath(datastore="amlpipe_samples", path="databricks")
#: A fixed timestamp for every jar entry: the same classes give the same jar, so the step stays reusable.
EPOCH = (1980, 1, 1, 0, 0, 0)

with DAG(
    dag_id="aml_databricks_dbfs",
    schedule=None,
    catchup=False,
    tags=["amlpipe", "example", "databricks"],
    doc_md=__doc__,
):

    @task
    def upload_script() -> str:
        return upload_to_databricks(COMPUTE, CODE / "dbfs" / "train-db-dbfs.py", SCRIPT_PATH)

    @task
    def build_and_upload_jar() -> str:
        import pyspark

        spark_jars = Path(pyspark.__file__).parent / "jars"
        with tempfile.TemporaryDirectory() as tmp:
            classes = Path(tmp, "classes")
            source = CODE / "wordcount" / "WordCount.java"
            subprocess.run(["javac", "-cp", f"{spark_jars}/*", "-d", str(classes), str(source)], check=True)
            jar = Path(tmp, "wordcount.jar")
            with zipfile.ZipFile(jar, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr(zipfile.ZipInfo("META-INF/MANIFEST.MF", EPOCH), "Manifest-Version: 1.0\n")
                for path in sorted(classes.rglob("*.class")):
                    archive.writestr(zipfile.ZipInfo(path.relative_to(classes).as_posix(), EPOCH), path.read_bytes())
            return upload_to_databricks(COMPUTE, jar, JAR_PATH)

    dbfs_step = DatabricksStepOperator(
        task_id="DBFSReference",
        python_script_path=SCRIPT_PATH,
        python_script_params=["--arg1", "value1"],
        inputs={"input": DATA},
        outputs=[Output("output")],
        spark_version="15.4.x-scala2.12",
        node_type="Standard_D3_v2",
        num_workers=1,
        run_name="DBFS_Reference",
        compute=COMPUTE,
        allow_reuse=True,
    )
    jar_step = DatabricksStepOperator(
        task_id="DBJarInDBFS",
        main_class_name="WordCount",
        jar_libraries=[JAR_PATH],
        jar_params=["--min-count", "1"],
        inputs={"input": DATA},
        outputs=[Output("output")],
        spark_version="15.4.x-scala2.12",
        node_type="Standard_D3_v2",
        num_workers=1,
        run_name="DB_JAR_demo",
        compute=COMPUTE,
        allow_reuse=True,
    )
    upload_script() >> dbfs_step
    build_and_upload_jar() >> jar_step
