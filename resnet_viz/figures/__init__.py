"""Pure figure builders: plain data in, plotly figure out (testable without a browser).

Imports ``spec`` and ``nets`` for names and shapes, never a computation (no ``analysis``,
no ``train``), never ``serve`` and never streamlit. ``style`` holds the palette.
"""
