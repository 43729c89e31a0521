"""LbT scores inside other training and prompt-optimisation libraries (optional extras).

- :func:`lbt_agents.integrations.trl.lbt_reward`: a reward function for TRL's ``GRPOTrainer``
  (``pip install 'lbt-agents[trl]'``).
- :func:`lbt_agents.integrations.dspy.lbt_metric`: a DSPy metric for ``dspy.Evaluate`` and the
  optimizers (``pip install 'lbt-agents[dspy]'``).

Both are synchronous (as their libraries call them) and score on one long-lived background event
loop, so they work from plain code, from worker threads and under a running event loop alike, and
a classroom's HTTP clients keep one loop.  Importing this package imports neither library.
"""
