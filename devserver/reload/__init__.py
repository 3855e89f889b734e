"""Hot reload's rules: the file watcher, which strategy a change gets, which paths never count, what the log says."""
