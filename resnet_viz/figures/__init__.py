"""Pure figure builders: plain data in, plotly figure out (testable without a browser)."""
