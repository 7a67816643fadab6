"""Unit tests of course_utils.grading.registry: ids, registration, lookup and lesson lists."""
import pytest

from course_utils.grading import registry
from course_utils.grading.registry import get_question, load_all, question, questions_for_lesson


@pytest.fixture
def scratch():
    """Questions registered by a test are removed afterwards."""
    before = set(registry.REGISTRY)
    yield
    for qid in set(registry.REGISTRY) - before:
        del registry.REGISTRY[qid]


@pytest.mark.parametrize("qid", ["1.add", "01-add", "01.Add", "01.", "001.add", "01.add-two", "ab.add"])
def test_malformed_ids_are_rejected(qid, scratch):
    """Is an id not of the form 'NN.snake_case' refused?"""
    with pytest.raises(ValueError, match="NN.snake_case"):
        question(qid, "t", answers=["f"])


def test_duplicates_and_empty_answers_are_rejected(scratch):
    """Are a question registered twice, two cases with one name, and a question naming no answer refused?"""
    q = question("98.twice", "t", answers=["f"])
    with pytest.raises(ValueError, match="registered twice"):
        question("98.twice", "t", answers=["f"])
    q.case("one")(lambda f: None)
    with pytest.raises(ValueError, match="two cases named"):
        q.case("one")(lambda f: None)
    with pytest.raises(ValueError, match="names no learner answer"):
        question("98.none", "t", answers=[])


def test_case_decorator_keeps_order_hint_and_timeout(scratch):
    """Does @q.case register cases in order with their hint and time limit, returning the function?"""
    q = question("98.cases", "Cases", answers=["f"], points=2, timeout=3)

    def first(f):
        pass

    assert q.case("first", hint="h1")(first) is first
    q.case("second", timeout=0.5)(lambda f: None)
    assert [(c.name, c.hint, c.timeout) for c in q.cases] == [("first", "h1", None), ("second", "", 0.5)]
    assert q.lesson == "98" and q.points == 2 and q.timeout == 3


def test_lookup_loads_the_lesson_module_and_names_known_ids():
    """Does get_question import checks/lessonNN.py on demand, and does an unknown id list the known ones?"""
    assert get_question("00.add").answers == ["add"]
    with pytest.raises(KeyError) as info:
        get_question("00.no_such_question")
    assert "00.add" in str(info.value) and "00.no_such_question" in str(info.value)


def test_questions_for_lesson_in_notebook_order():
    """Does lesson 00 have its four warm-up questions, in the order of its notebook, and load_all see them?"""
    assert [q.qid for q in questions_for_lesson("00")] == ["00.add", "00.mean", "00.normalize", "00.lr"]
    assert {"00.add", "00.lr", "00.mean", "00.normalize"} <= set(load_all())
    assert questions_for_lesson("97") == []
