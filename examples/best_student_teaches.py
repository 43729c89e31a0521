"""Compose (a): a teacher teaches three persona students; the student who learned best teaches a fourth."""

from statistics import mean

from lbt_agents import Classroom, M1Config, TeachingItem, m1_graph


async def best_student_teaches(room: Classroom, newcomer: str, items: list[TeachingItem]) -> dict:
    graph = m1_graph(M1Config(pairs_per_tp=4, greedy_baseline=False))
    learners = tuple(s for s in room.students if s.name != newcomer)

    # 1. The teacher teaches the three persona students: M1 runs their exams.
    first = Classroom(teachers=(room.teacher,), students=learners, examiner=room.examiner, meter=room.meter)
    taught = await graph.ainvoke({"items": items}, context=first)

    # 2. Who learned best: exam accuracy per student, over every exam they took.
    exams = [e for r in taught["results"].values() for p in r["pairs"] for e in p["exams"]]
    accuracy = {s.name: mean(e["score"] for e in exams if e["student"] == s.name) for s in learners}
    best = max(accuracy, key=accuracy.__getitem__)

    # 3. That student now teaches the newcomer, with the same graph.
    second = Classroom(teachers=(room.as_teacher(best),), students=(room.as_student(newcomer),),
                       examiner=room.examiner, meter=room.meter)
    peer = await graph.ainvoke({"items": items}, context=second)
    return {"accuracy": accuracy, "best": best, "taught": taught["results"], "peer": peer["results"]}
