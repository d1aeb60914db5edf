"""The experiments of the paper and its extensions: data, mechanisms, runners, reports.

Each runner is a module run with ``python -m notmiwae.experiments.<name>``; the reusable
pieces are :mod:`.datasets`, :mod:`.mechanisms`, :mod:`.baselines`, :mod:`.metrics` and
:mod:`.protocol`.
"""

__all__: list[str] = []
