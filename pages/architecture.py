"""Architecture: the network the sidebar describes, block by block, shortcut by shortcut."""
from __future__ import annotations

import streamlit as st

from resnet_viz.ui import frame
from resnet_viz import export
from resnet_viz.figures.architecture import architecture_diagram, architecture_table, stem_and_head
from resnet_viz.serve.pair import comparison_pair

ctx = frame.page("Architecture: the net you configured")
plain, residual = comparison_pair(ctx.spec)
which = st.segmented_control("Show", ["residual", "plain"], default="residual", key="arch_which") or "residual"
spec = residual if which == "residual" else plain
st.markdown("Each box is a block; the arrow beside it is its **shortcut** (blue: identity, "
            "*1×1 proj*: option B, *gate T(x)*: Highway, faded and dotted: switched off in the sidebar). "
            "Toggle shortcuts in the sidebar and watch the diagram follow.")

with frame.shown_errors("The architecture could not be drawn"):
    c1, c2 = st.columns(2)
    with c1:
        frame.chart(architecture_diagram(spec), "arch_diagram")
    with c2:
        rows = architecture_table(spec)
        ends = stem_and_head(spec)
        total = sum(r["params"] for r in rows) + ends["stem"][1] + ends["head"][1]
        st.metric("Parameters", f"{total:,}")
        st.dataframe(rows, hide_index=True, column_order=("block", "layers", "shortcut_desc", "out_shape", "params"),
                     column_config={"shortcut_desc": "shortcut", "out_shape": "output"})
        frame.download("Architecture table (CSV)", lambda: export.rows_to_csv(rows), "architecture.csv",
                        "dl_arch_csv")
        frame.download("Architecture table (JSON)", lambda: export.to_json({"spec": spec.to_dict(),
                        "stem_and_head": ends, "blocks": rows}), "architecture.json", "dl_arch")
st.caption("Option A shortcuts zero-pad new channels and keep plain and residual nets parameter-identical; "
           "option B projects with a 1×1 conv only where the shape changes (He et al. 2016, §3.3).")
