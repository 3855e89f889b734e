"""HTTPS: the local certificate authority, the certificates it signs, and the workers' TLS context and first-byte check."""
