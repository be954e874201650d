"""Privacy of the distributed market's exchanges: what a curious neighbour learns, and secure computation.

The threat model and what each message kind leaks are in ``docs/privacy.md``; :mod:`cyber.privacy.leakage`
measures it, :mod:`cyber.privacy.paillier` holds the Paillier keys, fixed point and packing (``phe``),
:mod:`cyber.privacy.coefficient` the random encryption coefficient and its feasible range,
:mod:`cyber.privacy.pairs` the secure two-party exchange of the reciprocity pairs, and
:mod:`cyber.privacy.sums` the multi-party sums of the sweep's subtree flows (``--privacy hybrid``).
"""
