"""ResNet Lab: plain vs residual nets, the probes that tell them apart, and the app around them.

The package is layered; each layer may import only the layers below it (docs/DESIGN.md, and
the import contract in ``.importlinter`` that ``make test`` checks):

    ui        page helpers for the Streamlit app (the only layer that imports streamlit)
    cli       the command line
    lessons | serve | export    guided lessons; job queue, workers, run store; take-home files
    figures   pure plotly builders: data in, figure out
    analysis  studies of a net: shattering, lesions, paths, landscapes, attribution
    train     the trainer, its probes, cost estimates
    nets | data   the networks; datasets
    spec | jsonsafe | labels   the experiment spec; the one JSON encoder; run names
    validation   the one validation layer (pydantic), under the spec

Nothing heavy runs at import time: importing a module never trains, loads data or starts a
process.
"""
__version__ = "0.2.0"
