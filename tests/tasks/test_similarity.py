from lbt_agents.tasks._similarity import nearest_neighbours, tfidf_matrix

import numpy as np


def test_tfidf_rows_are_unit_length():
    mat = tfidf_matrix(["apples and pears", "pears and plums", ""])
    assert np.allclose(np.linalg.norm(mat[:2], axis=1), 1.0)
    assert not mat[2].any()


def test_nearest_neighbours_rank_by_similarity_and_group():
    texts = ["red apple pie", "green apple pie", "blue car engine", "red car engine", "apple pie recipe"]
    nn = nearest_neighbours(texts, 2)
    assert set(nn[0]) == {1, 4}
    assert nn[2][0] == 3
    assert all(i not in row for i, row in enumerate(nn))
    grouped = nearest_neighbours(texts, 2, groups=["a", "b", "b", "a", "b"])
    assert grouped[0][0] == 3  # same group first even though less similar
    assert nearest_neighbours(texts, 10)[0] == nearest_neighbours(texts, 10)[0] and len(nearest_neighbours(texts, 10)[0]) == 4
