"""Serving: everything that owns processes, threads and I/O for a class.

``queue`` (the shared job queue with its spec-hash cache) with ``job`` (a run's public
handle and state), ``lineup`` (who waits, who trains) and ``worker_threads`` (the chunk
loop); ``workers`` and ``worker_host`` (trainer processes over ``multiprocessing``
connections); ``store`` (the SQLite run store); ``config`` (the classroom config); ``pair``
(a student's plain/residual pair); ``reaper`` (ends idle sessions); ``memory`` (giving memory
back, and the developers' trace); ``services`` (one of each, per process).
Imports the science layers; never figures, lessons or streamlit.
"""
