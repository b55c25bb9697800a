"""Page helpers for the Streamlit app: the ``frame`` every page runs in (spec from the URL,
sidebar ``knobs``, services), the ``live`` training controls and polls with their pure
decisions in ``run_view``, ``lesson_runs`` (a lesson through the job queue), session
``expiry`` and ``legacy_pages`` (a first visit straight to a sub-page URL). The only layer
that imports streamlit; ``pages/`` holds only page scripts.
"""
