"""HTTP/1.1 without sockets: bytes in, request events out; the framing of responses; targets, Host, dates."""
