"""EXP's quick-start module, as EXP's README wrote it, plus one import and one decorator line.

``@runnable`` makes it a Hydra app: each job's config arrives as keyword
arguments (with EXP's ``id``, ``run`` and ``pid``), and the return value is the
job's result, which optimizing sweepers minimise. ``run(x=3)`` still calls the
plain function.
"""

from exp_compat import runnable


@runnable
def run(x=1, **kwargs):
    return x**2


if __name__ == "__main__":
    run()
