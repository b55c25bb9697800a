"""Analyses of trained nets: lesions, paths, loss landscapes, singularities."""
