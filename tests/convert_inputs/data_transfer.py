from azureml.core import Datastore, Experiment, Workspace
from azureml.core.compute import ComputeTarget, DataFactoryCompute
from azureml.data.data_reference import DataReference
from azureml.data.sql_data_reference import SqlDataReference
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import DataTransferStep

ws = Workspace.from_config()
blob_datastore = Datastore.register_azure_blob_container(
    workspace=ws, datastore_name="blob_datastore", container_name="data", account_name="storage"
)
sql_datastore = Datastore.register_azure_postgre_sql(
    workspace=ws, datastore_name="postgres_datastore", server_name="pg", database_name="db",
    user_id="user", user_password="placeholder",
)
data_factory = ComputeTarget(ws, "adftest")

blob_data_ref = DataReference(
    datastore=blob_datastore, data_reference_name="blob_test_data", path_on_datastore="testdata"
)
adls_data_ref = DataReference(
    datastore=Datastore(ws, "adls_datastore"), data_reference_name="adls_test_data", path_on_datastore="testdata"
)
transfer_adls_to_blob = DataTransferStep(
    name="transfer_blob_to_adls",
    source_data_reference=blob_data_ref,
    destination_data_reference=adls_data_ref,
    compute_target=data_factory,
    source_reference_type="directory",
    destination_reference_type="directory",
)

sql_query = SqlDataReference(
    datastore=sql_datastore, data_reference_name="sql_query_ref", sql_query="select * from passengers"
)
sql_to_blob = DataTransferStep(
    name="sql_to_blob",
    source_data_reference=sql_query,
    destination_data_reference=DataReference(
        datastore=blob_datastore, data_reference_name="passengers_csv", path_on_datastore="passengers.csv"
    ),
    compute_target=data_factory,
)
sql_to_blob.run_after(transfer_adls_to_blob)

pipeline = Pipeline(workspace=ws, steps=[sql_to_blob])
pipeline_run = Experiment(ws, "Data_Transfer_example").submit(pipeline)
