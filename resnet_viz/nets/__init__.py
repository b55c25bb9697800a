"""The networks: one block class whose shortcut kind is its only branch (``blocks``), and the
nets built from a spec (``models``), He et al. 2016. Imports only ``spec`` and torch."""
