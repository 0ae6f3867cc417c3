"""One `inq train` run: its folder, callbacks, loggers, ensemble assembly and the training itself."""
