from wagerlab.sim.trace import Trace


def test_digest_ignores_interleaving_of_actors() -> None:
    first, second = Trace(), Trace()
    first.record("bettor-1", "bet", 0, 101, 1, 5)
    first.record("bettor-2", "bet", 0, 102, 0, 7)
    second.record("bettor-2", "bet", 0, 102, 0, 7)
    second.record("bettor-1", "bet", 0, 101, 1, 5)
    assert first.digest() == second.digest()


def test_digest_changes_with_one_action() -> None:
    first, second = Trace(), Trace()
    first.record("bettor-1", "bet", 0, 101, 1, 5)
    second.record("bettor-1", "bet", 0, 101, 1, 6)
    assert first.digest() != second.digest()


def test_digest_keeps_order_within_actor() -> None:
    first, second = Trace(), Trace()
    first.record("bettor-1", "bet", 0)
    first.record("bettor-1", "claim", 0)
    second.record("bettor-1", "claim", 0)
    second.record("bettor-1", "bet", 0)
    assert first.digest() != second.digest()
    assert first.action_count() == 2
