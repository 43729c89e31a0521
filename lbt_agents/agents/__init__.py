"""The classroom's agents: teachers, students and an examiner."""

from lbt_agents.agents._agent import Agent
from lbt_agents.agents.examiner import Examiner
from lbt_agents.agents.student import Student
from lbt_agents.agents.teacher import Teacher

__all__ = ["Agent", "Examiner", "Student", "Teacher"]
