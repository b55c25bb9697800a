"""The command line: one module per subcommand (``train``/``sweep``, ``shatter``, ``lesson``),
``options`` for what they share, ``main`` for the parser and exit codes (docs/cli.md).

Layer: the top, beside the UI. It may import every layer below (science, figures, lessons,
serve) and never streamlit.
"""
