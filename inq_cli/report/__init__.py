"""`inq report`: the paper's tables built from finished runs, and their Markdown/CSV/PNG files."""
