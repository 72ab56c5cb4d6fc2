print("register")
