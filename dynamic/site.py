"""The sample site built with devserver.router.

Served two ways: as ``site:app`` (mounted at /) or as ``/site.py`` (mounted
at SCRIPT_NAME="/site.py"). Every link and redirect goes through
``request.url_for`` so both work.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, unquote

from devserver.router import App, Request, Response, abort, escape, redirect

app = App()
application = app  # /site.py looks for the module's ``application``

ITEMS = {1: "teapot", 2: "kettle", 3: "mug"}
VISITOR_COOKIE = "visitor"


def page(title: str, body: str) -> str:
    """A whole HTML page; ``title`` is escaped here, ``body`` must already be (``escape()`` its text)."""
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>{body}</body></html>\n")


@app.route("/")
def index(request: Request) -> str:
    links = [("/hello/world", "Say hello"), ("/items/1", "Item 1"), ("/form", "A form"),
             ("/api/time", "The time as JSON")]
    items = "".join(f'<li><a href="{escape(request.url_for(path))}">{escape(text)}</a></li>'
                    for path, text in links)
    echo = "<p>POST JSON to <code>/api/echo</code> to have it echoed.</p>"
    return page("devserver sample site", f"<ul>{items}</ul>{echo}")


@app.route("/hello/<name>")
def hello(request: Request, name: str) -> str:
    return page(f"Hello, {name}!", f'<p><a href="{escape(request.url_for("/"))}">Home</a></p>')


@app.route("/items/<id:int>")
def item(request: Request, id: int) -> str:
    if id not in ITEMS:
        abort(404, f"There is no item {id}.")
    return page(f"Item {id}", f"<p>{escape(ITEMS[id])}</p>")


@app.route("/form")
def form_page(request: Request) -> str:
    # The cookie holds the name percent-encoded: cookie values must be ASCII.
    visitor = unquote(request.cookies.get(VISITOR_COOKIE, ""))
    greeting = f"<p>Welcome back, {escape(visitor)}.</p>" if visitor else ""
    sent = "<p>Thanks, your message was received.</p>" if request.args.get("sent") else ""
    form = (f'<form method="post" action="{escape(request.url_for("/form"))}">'
            '<label>Name <input name="name"></label> <label>Message <input name="message"></label> '
            '<button>Send</button></form>')
    return page("A form", greeting + sent + form)


@app.route("/form", methods=["POST"])
def form_post(request: Request) -> Response:
    name = request.form.get("name", "").strip()
    if not name:
        abort(400, "Please give a name.")
    # Post/Redirect/Get: 303 so a reload does not resend the form.
    response = redirect(request.url_for("/form", sent="1"), status=303)
    response.set_cookie(VISITOR_COOKIE, quote(name), max_age=3600)
    return response


@app.route("/api/time")
def api_time() -> dict[str, Any]:
    now = time.time()
    return {"epoch": now, "iso": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now))}


@app.route("/api/echo", methods=["POST"])
def api_echo(request: Request) -> dict[str, Any]:
    return {"echo": request.json, "args": {name: request.args.getlist(name) for name in request.args}}
