"""Measuring the served cascade: ``make bench`` (perf_analyzer on the real server, side by side)
and ``make tune`` (instance and thread counts)."""
