"""PromptBox: live count against the limit, Clear, and Ctrl+Enter submit through the key helper."""

from __future__ import annotations

from ipyimagegen.widgets.prompt_box import PromptBox


def test_count_shows_length_against_the_limit() -> None:
    box = PromptBox(limit=1000)
    box.textarea.value = "x" * 812
    assert "812 / 1,000" in box.count.value
    assert "ipyimagegen-over" not in box.count.value
    assert not box.over_limit


def test_count_warns_above_the_limit_and_follows_limit_changes() -> None:
    box = PromptBox("y" * 1200, limit=4000)
    assert not box.over_limit
    box.limit = 1000
    assert box.over_limit
    assert "ipyimagegen-over" in box.count.value and "1,200 / 1,000" in box.count.value


def test_clear_button_empties_the_prompt() -> None:
    box = PromptBox("a castle")
    box.clear_button.click()
    assert box.value == "" and "0 / " in box.count.value


def test_textarea_updates_continuously_and_is_findable() -> None:
    box = PromptBox()
    assert box.textarea.continuous_update
    assert "ipyimagegen-prompt" in box.textarea._dom_classes


def test_ctrl_enter_message_submits_with_the_text_as_typed() -> None:
    box = PromptBox("old text")
    seen: list[str] = []
    box.on_submit(lambda b: seen.append(b.value))
    assert box.shortcut is not None and box.shortcut in box.children
    # What the front end sends on Ctrl/Cmd+Enter: the text may be newer than the synced value.
    box.shortcut._handle_message(box.shortcut, {"event": "submit", "value": "a fox at dawn"}, [])
    assert seen == ["a fox at dawn"] and box.value == "a fox at dawn"
    box.shortcut._handle_message(box.shortcut, {"event": "something else"}, [])
    assert len(seen) == 1


def test_submit_callbacks_can_be_removed_and_one_failure_does_not_stop_the_rest() -> None:
    box = PromptBox("hello")
    seen: list[str] = []

    def broken(_box: PromptBox) -> None:
        raise ValueError("broken callback")

    def record(b: PromptBox) -> None:
        seen.append(b.value)

    box.on_submit(broken)
    box.on_submit(record)
    box.submit()
    assert seen == ["hello"]
    box.on_submit(record, remove=True)
    box.submit()
    assert seen == ["hello"]


def test_the_shortcut_script_listens_for_ctrl_or_cmd_enter_only_in_its_own_box() -> None:
    box = PromptBox()
    esm = box.shortcut._esm
    assert "ctrlKey" in esm and "metaKey" in esm and '"Enter"' in esm
    assert ".ipyimagegen-prompt-box" in esm and "ipyimagegen-prompt-box" in box._dom_classes
