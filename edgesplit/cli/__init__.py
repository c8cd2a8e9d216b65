"""The `edgesplit` command: argument parsing and printing only; the work happens in the packages."""
