"""The classroom's agents: a teacher, students and an examiner."""

from lbt_agents.agents.examiner import Examiner
from lbt_agents.agents.roster import Roster, make_roster
from lbt_agents.agents.student import Student
from lbt_agents.agents.teacher import Teacher

__all__ = ["Examiner", "Roster", "Student", "Teacher", "make_roster"]
