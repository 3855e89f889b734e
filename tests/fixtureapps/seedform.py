def application():
    return "seed form works"
