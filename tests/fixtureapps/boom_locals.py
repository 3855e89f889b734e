"""Raises two frames deep with secrets in its locals: the rich 500 page must mask them."""


def application(environ, start_response):
    password = environ.get("HTTP_X_PASSWORD", "")  # noqa: F841 - a local the error page must mask
    items = list(range(1000))
    name = environ.get("QUERY_STRING", "")
    return lookup(items, name)


def lookup(items, name):
    count = len(items)
    return {"known": count}[name]
