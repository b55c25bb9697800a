"""Build each live-page figure once on toy data when the server starts.

plotly imports the classes behind a property path (``contour.colorbar.title``, ...) on the
first figure that sets it, under Python's import lock. If that first figure is the one 30
students' pages draw at the end of the shared run, all 30 script threads queue on that
lock while one imports (a py-spy dump of the class benchmark caught 15 waiting): paying
it here, in the services' warm-up thread, keeps the end of a lesson run fast.
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def _toy_run(kind: str) -> dict:
    steps = [0, 10, 20]
    return {"key": kind, "step": 20, "state": "finished", "status": "finished",
            "spec": {"shortcut": kind, "depth": 4, "model": "mlp"},
            "history": {"step": steps, **{k: [1.0, 0.5, 0.25] for k in
                                          ("train_loss", "val_loss", "train_acc", "val_acc")}},
            "probe_step": steps, "batch_loss": [1.0, 0.5, 0.25],
            "grad_norms": [[1.0, 0.5]] * 3, "response_std": [[1.0, 0.5]] * 3,
            "branch_ratio": [[1.0, 0.5]] * 3, "layer_names": ["a", "b"], "response_names": ["a", "b"],
            "final": {}}


def warm_up() -> None:
    """Build the Train page's figures and the probes' charts once; never raises."""
    from resnet_viz.figures.boundary import boundary_pair
    from resnet_viz.figures.responses import branch_ratio, response_std
    from resnet_viz.figures.training import grad_norm_by_depth, grad_norm_heatmap, loss_curves
    runs = [_toy_run("none"), _toy_run("identity")]
    grid = {"xx": [0.0, 1.0], "yy": [0.0, 1.0], "prob": [[0.1, 0.9], [0.4, 0.6]]}
    builders = [lambda: loss_curves(runs, "loss"), lambda: loss_curves(runs, "acc"),
                lambda: boundary_pair(grid, grid, [[0.0, 0.0], [1.0, 1.0]], [0, 1]),
                lambda: grad_norm_heatmap(runs[0]), lambda: grad_norm_by_depth(runs),
                lambda: response_std(runs), lambda: branch_ratio(runs)]
    for build in builders:
        try:
            build().to_json()   # st.plotly_chart serialises it too
        except Exception:       # an optimisation only; a real page reports real errors
            log.debug("figure warm-up failed", exc_info=True)
