"""Raises two frames deep with locals that name its request: the console reads them back in its worker."""


def application(environ, start_response):
    tag = environ.get("QUERY_STRING", "")
    weight = len(tag) * 3
    return check(tag, weight)


def check(tag, weight):
    doubled = weight * 2
    label = f"order-{tag}"
    raise ValueError(f"{label} refused ({doubled})")
