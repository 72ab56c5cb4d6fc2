print("trial")
