"""An EXP runnable made a Hydra app with one import and one decorator line; it records what it received."""

import json
import os

from exp_compat import runnable


@runnable
def run(x=1, **kwargs):
    with open(os.environ["EXP_TEST_RECORD"], "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"x": x, **kwargs}) + "\n")
    return x**2


if __name__ == "__main__":
    run()
