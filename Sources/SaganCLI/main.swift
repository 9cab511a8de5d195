print("sagan")
