import pytest

from core.arms import CHALLENGER_ARM, CHAMPION_ARM, arm_fraction, arm_of


def test_assignment_is_stable_and_close_to_the_share():
    ids = [f"ws-{i}" for i in range(4000)]
    arms = [arm_of(w, 0.2) for w in ids]
    assert arms == [arm_of(w, 0.2) for w in ids]  # same answer every call
    share = arms.count(CHALLENGER_ARM) / len(ids)
    assert 0.18 < share < 0.22
    assert arm_fraction("ws-1") == pytest.approx(0.0, abs=1) and arm_fraction("ws-1") == arm_fraction("ws-1")


def test_raising_the_share_keeps_challenger_workspaces_there():
    ids = [f"ws-{i}" for i in range(1000)]
    small = {w for w in ids if arm_of(w, 0.1) == CHALLENGER_ARM}
    large = {w for w in ids if arm_of(w, 0.3) == CHALLENGER_ARM}
    assert small and small <= large


def test_zero_share_is_all_champion_and_out_of_range_is_refused():
    assert {arm_of(f"w{i}", 0.0) for i in range(100)} == {CHAMPION_ARM}
    with pytest.raises(ValueError, match="between 0 and 1"):
        arm_of("w", 1.5)


def test_a_workspace_has_one_arm_by_source_id_or_uuid():
    from core.arms import arm_of, workspace_arm
    from core.ids import entity_uuid

    for w in ("ws-001", "acme", "ws-042"):
        u = str(entity_uuid("workspace", w))
        assert workspace_arm(w, 0.5, "s") == workspace_arm(u, 0.5, "s") == arm_of(u, 0.5, "s")
