"""The dashboard's screens: the main one, a request's detail, the console in a failing frame, the editor, the help."""
