"""What answers a request: static files, folder listings, WSGI apps, the server's own pages, live reload."""
