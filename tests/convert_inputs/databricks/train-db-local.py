print("databricks")
