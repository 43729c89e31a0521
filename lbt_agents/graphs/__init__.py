"""The teaching graphs, built from the public API of :mod:`lbt_agents`.

- :mod:`~lbt_agents.graphs.m1_scoring`: M1 (teach → exams → scores → selection);
- :mod:`~lbt_agents.graphs.m2_preferences`: M1 then DPO preference pairs;
- :mod:`~lbt_agents.graphs.m3_refinement`: M3 exemplar refinement over the classroom's lanes;
- :mod:`~lbt_agents.graphs.tutor_app`: M1 as a subgraph inside an app;
- :mod:`~lbt_agents.graphs.server`: the graphs ``langgraph.json`` serves.

Each module has a ``from_config(cfg)`` builder for ``lbt run MODULE:from_config``.
"""
