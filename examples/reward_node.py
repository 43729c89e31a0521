"""Compose (b): LbT scoring as a reward node in an agent that drafts solutions and keeps the best draft."""

from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from lbt_agents import Classroom, Problem, lbt_reward_node


class Drafting(TypedDict, total=False):
    problem: Problem
    eps: list[Problem]  # similar problems: the classroom's students take them with each draft
    drafts: list[str]
    lbt_score: list[float]
    best: str


def drafting_agent(drafter: BaseChatModel, n: int = 4):
    async def draft(state: Drafting) -> dict:
        ask = f"{state['problem']['question']}\nSolve step by step; end with '[[Final Answer]]: <answer>'."
        replies = await drafter.abatch([ask] * n)
        return {"drafts": [r.content for r in replies]}

    def keep_best(state: Drafting) -> dict:
        scores = state["lbt_score"]
        return {"best": state["drafts"][scores.index(max(scores))]}

    app = StateGraph(Drafting, context_schema=Classroom)
    app.add_node("draft", draft)
    app.add_node("reward", lbt_reward_node(draft_key="drafts"))  # the students learn from each draft
    app.add_node("keep_best", keep_best)
    app.add_edge(START, "draft")
    app.add_edge("draft", "reward")
    app.add_edge("reward", "keep_best")
    app.add_edge("keep_best", END)
    return app.compile()
