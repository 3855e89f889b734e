"""What answers a request: static files, folder listings, WSGI and ASGI apps (WebSockets too), the server's own pages, live reload."""
