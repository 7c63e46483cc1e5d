"""References write a value the agent must produce as a copy that continues a phrase of its context. Where the
reference made the model recall a value with nothing to anchor it (a bare month name, an owner, a new log level) or
rewrite it (3,650.00 as 3650.0), the model wrote a plausible wrong value; these tests pin the anchors."""

from __future__ import annotations

import re

from agentkit.envs.families._kit import MONTH_NAMES
from agentkit.envs.generator import generate_records
from agentkit.envs.spec import Call, TaskRecord, ToolSpec
from agentkit.envs.trajectories import LOCAL_MODEL

# The anchors are data design for the local model: the task set keeps each step's phrase apart (`Call.anchor`) and
# the model's renderer restates it, so these tests read the thoughts and arguments as that renderer writes them, on
# tasks in the template's wording (whose phrases the anchors restate).
_thought = LOCAL_MODEL.thought


def _records(n: int, seed: int, families: list[str]) -> list[TaskRecord]:
    return generate_records(n, seed, families, (1, 2), wording="template")


def _assert_restates_the_phrase_up_to(month_name: str, thought: str, instruction: str) -> None:
    """The thought opens "The <phrase>: ...", where the phrase is the instruction's own words ending on the month."""
    phrase = thought.split(": ", 1)[0].removeprefix("The ")
    assert phrase in instruction, (phrase, instruction)
    assert phrase.endswith(month_name), (phrase, month_name)


def test_a_spending_thought_restates_the_instructions_phrase_up_to_the_month_it_lists() -> None:
    checked = 0
    for rec in _records(120, 6161, ["ledger"]):
        for call in rec.solution.calls:
            month = next((v for k, v in call.arguments.items() if k in ("month", "period")), None)
            if month is None or ": " not in _thought(call):
                continue
            _assert_restates_the_phrase_up_to(MONTH_NAMES[month], _thought(call), rec.task.instruction)
            checked += 1
    assert checked >= 10


def test_a_top_up_target_is_written_in_the_expression_as_the_instruction_writes_it() -> None:
    checked = 0
    for rec in _records(120, 6162, ["ledger"]):
        for call in rec.solution.calls:
            if _thought(call).startswith("Topping up to exactly "):
                target = _thought(call).removeprefix("Topping up to exactly ").split(":", 1)[0]
                assert f"exactly {target} " in rec.task.instruction
                assert LOCAL_MODEL.arguments(rec, call)["expression"].startswith(f" {target} - ")
                checked += 1
    assert checked >= 3


def test_every_calculator_expression_opens_with_a_space_so_its_first_number_tokenizes_like_its_source() -> None:
    """Byte-level BPE splits digits by what precedes them; the values an agent copies follow a space."""
    checked = 0
    for rec in _records(150, 6163, ["ledger", "hr", "filesystem", "inventory"]):
        for call in rec.solution.calls:
            if "expression" not in call.arguments:
                continue
            expression = LOCAL_MODEL.arguments(rec, call)["expression"]
            assert expression.startswith(" ") and not expression.startswith("  "), expression
            first = re.match(r" ([0-9][0-9,.]*)", expression)
            if first:
                assert f" {first.group(1)}" in rec.task.instruction + " ".join(_thought(c) for c in rec.solution.calls)
            checked += 1
    assert checked >= 20


def test_filesystem_owner_and_log_level_are_restated_from_the_instruction() -> None:
    owners = levels = 0
    for rec in _records(150, 6164, ["filesystem"]):
        for call in rec.solution.calls:
            owner = call.arguments.get("owner")
            if owner and _thought(call).startswith("Files owned by"):
                assert f"owned by the user '{owner}'" in _thought(call) and f"owned by the user '{owner}'" in \
                    rec.task.instruction
                owners += 1
            if _thought(call).startswith("The log level of"):
                phrase = _thought(call).split(":", 1)[0].removeprefix("The ")
                assert phrase in rec.task.instruction, (phrase, rec.task.instruction)
                level = phrase.rsplit(" ", 1)[1]
                assert f"log_level = {level}" in str(call.arguments)
                levels += 1
    assert owners >= 2 and levels >= 2


def test_a_dataset_month_thought_restates_the_instructions_phrase_up_to_the_month_its_code_filters() -> None:
    checked = 0
    for rec in _records(120, 6165, ["dataset"]):
        for call in rec.solution.calls:
            month = re.search(r"startswith\('(\d{4}-\d{2})'\)", call.arguments.get("code", ""))
            if month is None:
                continue
            _assert_restates_the_phrase_up_to(MONTH_NAMES[month.group(1)], _thought(call), rec.task.instruction)
            checked += 1
    assert checked >= 10


def test_a_dataset_script_prints_a_label_before_its_value_and_the_answer_copies_the_value_as_printed() -> None:
    """A value printed bare opens its line (no space before it); the answer's copy follows a space."""
    answers = 0
    for rec in _records(120, 6166, ["dataset"]):
        scripts = [c.arguments["code"] for c in rec.solution.calls if "code" in c.arguments]
        assert scripts, rec.task.task_id
        last = scripts[-1].rstrip("\n").rsplit("\n", 1)[-1]
        assert re.fullmatch(r"print\('[a-z ]+:', .+\)", last), last
        if rec.solution.answer and "average" in rec.task.instruction:
            printed = next(h for h in rec.meta["hidden"] if re.fullmatch(r"[0-9.]+", h))
            assert f" {printed}." in rec.solution.answer, (printed, rec.solution.answer)
            answers += 1
    assert answers >= 5


def test_a_single_posting_goes_through_the_calculator_so_the_answer_copies_a_number_after_a_space() -> None:
    """A posting's amount reads "-59.45" in the listing; the answer writes " 59.45", another token sequence."""
    singles = 0
    for rec in _records(150, 6167, ["ledger"]):
        for call in rec.solution.calls:
            expression = LOCAL_MODEL.arguments(rec, call).get("expression", "")
            if _thought(call).startswith("One posting"):
                value = expression.strip()
                assert re.fullmatch(r"[0-9]+(\.[0-9]+)?", value), expression
                assert _thought(call).endswith(f" {value}."), _thought(call)
                if rec.solution.answer:
                    assert f" {value} " in rec.solution.answer, rec.solution.answer
                singles += 1
    assert singles >= 5


# Kinds that failed on held-out tasks (seed 7,770,039) looked far back for what a step needs; their references now
# restate it right before the step: the chosen ticket, the setting a config file is read for, a fare question's day,
# each warranty period before the comparison, a case's facts by name. Two kinds still failed with the restatement
# (seed 7,770,043), and now hand the decision to a tool: a price change by verb and percentage, an assign by name.


def _spec(rec: TaskRecord, call: Call) -> ToolSpec:
    spec = rec.environment.tool(call.tool)
    assert spec is not None
    return spec


def _impl(rec: TaskRecord, call: Call) -> str:
    return _spec(rec, call).impl


def test_the_oldest_ticket_is_assigned_by_the_name_the_instruction_gives() -> None:
    """No agent-id look-up sits between the listing and the assign: the name is a copy of the instruction's."""
    seen = 0
    for rec in generate_records(120, 6161, ["tickets"], (1, 2), wording="template"):
        calls = rec.solution.calls
        for i, call in enumerate(calls):
            if _impl(rec, call) != "tickets.assign_named":
                continue
            args = {_spec(rec, call).config["params"][k]: v for k, v in call.arguments.items()}
            assert f"oldest: {args['id']} " in _thought(call), _thought(call)
            assert _thought(call).endswith(f"assigning it to {args['agent_name']}."), _thought(call)
            assert f"ticket to {args['agent_name']}." in rec.task.instruction, rec.task.instruction
            assert all(args["agent_name"] not in c.arguments.values() for c in calls[:i])  # no id look-up first
            seen += 1
    assert seen >= 5


def test_a_price_change_copies_the_instructions_verb_and_percentage_into_the_tool() -> None:
    cuts = raises = 0
    for rec in generate_records(200, 6262, ["inventory"], (1, 2), wording="template"):
        for call in rec.solution.calls:
            if _impl(rec, call) != "inventory.adjust_price":
                continue
            args = {_spec(rec, call).config["params"][k]: v for k, v in call.arguments.items()}
            verb = args["direction"].capitalize()
            assert f"{verb} the price of the " in rec.task.instruction
            assert _thought(call).endswith(f"{args['direction']} it by {args['percent']}%."), _thought(call)
            cuts, raises = cuts + (verb == "Cut"), raises + (verb == "Raise")
    assert cuts >= 5 and raises >= 5
    assert 0.3 < cuts / (cuts + raises) < 0.7  # the generator no longer leans to raising


def test_a_config_file_is_read_for_the_setting_the_question_asks() -> None:
    seen = 0
    for rec in generate_records(200, 6363, ["filesystem"], (1, 2), wording="template"):
        text = rec.task.instruction
        asks_port = "What port does" in text or "its port setting" in text
        asks_workers = "worker count" in text or "its workers setting" in text
        if not (asks_port or asks_workers):
            continue
        key = "port" if asks_port else "workers"
        reads = [c for c in rec.solution.calls if _impl(rec, c) == "filesystem.read"]
        assert any(c.thought.endswith(f".conf for its {key} setting.") for c in reads), [c.thought for c in reads]
        assert f"The {key} setting: the file says {key} = " in rec.solution.thought, rec.solution.thought
        seen += 1
    assert seen >= 5


def test_a_fare_question_is_searched_under_its_own_words_up_to_the_day() -> None:
    seen = 0
    for rec in generate_records(200, 6464, ["travel"], (1, 2), wording="template"):
        for call in rec.solution.calls:
            if not _thought(call).startswith("The cheapest "):
                continue
            asked, rest = _thought(call).removeprefix("The ").split(": the day is ", 1)
            assert f"What is the {asked}?" in rec.task.instruction, (asked, rec.task.instruction)
            day = rest.split(".", 1)[0]
            assert day in call.arguments.values(), (day, call.arguments)
            seen += 1
    assert seen >= 5


def test_knowledge_answers_and_case_updates_name_the_fact_with_its_value() -> None:
    compared = filled = 0
    for rec in generate_records(200, 6565, ["knowledge"], (1, 2), wording="template"):
        text = rec.task.instruction
        if "longer warranty" in text:
            a, b = text.split("longer warranty: the ", 1)[1].split("?", 1)[0].split(" or the ")
            periods = dict(re.findall(r"The ([\w ]+?): '[^']*?(\d+) months'", rec.solution.thought))
            assert list(periods) == [a, b], rec.solution.thought
            winner = max(periods, key=lambda p: int(periods[p]))
            assert f"{periods[winner]} months is longer: the {winner}." in rec.solution.thought
            assert winner in (rec.solution.answer or ""), rec.solution.answer
            compared += 1
        for call in rec.solution.calls:
            if _thought(call).startswith("On ") and _thought(call).endswith("; recording it."):
                assert re.search(r"the (warranty period in months|refund limit in EUR|support tier) is ", _thought(call))
                filled += 1
    assert compared >= 3 and filled >= 3
