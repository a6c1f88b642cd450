"""Hydra sweepers for EXP spaces: exp_grid (EXP's runner) and exp_gopt (EXP's optimizer).

Hydra imports every public module here when it scans for plugins, so only
config.py and the thin plugin classes are public; the work lives in _-prefixed
modules that Hydra's scan skips and that are imported when a sweep starts.
"""
