"""Settings in layers (defaults < ``[tool.devserver]`` in pyproject.toml < ``DEVSERVER_*`` < the command line) and the project's ``.env``."""
