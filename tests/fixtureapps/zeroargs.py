def application():
    return "zero-argument form works"
