"""The space model and its syntaxes: the parameters and their rules (``parameters``), the :class:`Space` read
from an EXP TOML file (``model``), its grid and optimization views (``grid``, ``search``), Hydra's sweep
syntax as parameters (``hydra_syntax``) and the space as a sweep for Hydra's own sweepers (``convert``)."""
