"""From a comment to a verdict: the model, the rules, the thresholds.

Owns the serving spam model and its hot swap (``model``), rules then model then
thresholds (``verdicts``), per-site allow and block lists (``site_rules``), the
toxicity model (``toxicity``) and the shadow candidate (``shadow``).

May import: ``service.registry``, ``service.store`` and the frame's base;
``training``'s text and feature code. Never Flask request state.
"""
