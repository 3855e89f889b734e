"""The user's code: naming an app, importing and re-importing it, development mode per framework, the project's files."""
