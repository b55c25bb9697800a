"""Training: the ``trainer``, its hook-based ``probes``, bounded ``history`` logs and run-time
``estimate``s. Imports ``spec``, ``nets`` and ``data``; never serve, figures, lessons or UI."""
