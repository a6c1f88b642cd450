"""Hydra launchers of hydra-exp: exp_local (worker slots, one GPU per job via CUDA_VISIBLE_DEVICES).

Only config.py and the thin plugin class are public modules (Hydra imports them
in every app while scanning for plugins); the work lives in _-prefixed modules.
"""
