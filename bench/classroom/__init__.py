"""The classroom load benchmark (``bench/bench_classroom.py``), in parts.

- ``constants``: the preset, page selectors and browser flags every part shares;
- ``processes``: the server's and the clients' memory, CPU time and threads (psutil);
- ``server``: the Streamlit server under test: start, stop, read its counters and log;
- ``inside``: what runs *inside* that server: counters around the trainers and script runs;
- ``browser_client`` / ``ws_client``: one simulated student (a Chromium page / a WebSocket);
- ``phase``: a group of students arriving, getting their results and leaving, measured;
- ``summary``: percentiles and per-spec compute from the records and counters;
- ``report``: the targets and the printed table;
- ``cli``: the command line and the order of the phases.
"""
