"""Early stopping at run time: ``report()`` and ``Pruned`` in the job (``reporting``), where the rungs are
(``rungs``), the pure rules that decide at them (``pruners``) and their replay over old curves
(``rung_check``, ``exp-compat rungs``)."""
