"""Training data: what the model learns to generate is exactly what the agent loop will ask it for."""

from __future__ import annotations

import pytest

from agentkit.backends.local import chat_format as cf
from agentkit.backends.local.tokenizer import train_tokenizer
from agentkit.envs.eval import DEFAULT_SYSTEM_PROMPT
from agentkit.envs.runtime import Episode
from agentkit.messages import AssistantMessage, SystemMessage, UserMessage
from agentkit.training.data import (
    Example,
    batch_schedule,
    encode_conversation,
    generate_trajectories,
    make_batches,
)
from agentkit.training.recipe import Recipe, TrainError

RECIPE = Recipe(n_tasks=30, difficulties=(1, 2, 3))


@pytest.fixture(scope="module")
def trajectories():
    return generate_trajectories(RECIPE)


@pytest.fixture(scope="module")
def tokenizer(trajectories):
    return train_tokenizer([cf.render(m, t, thinking=True).text for _, m, t in trajectories], 512)


def per_turn_reference(tokenizer, messages, tools, thinking):
    """Targets the slow, obvious way: each assistant turn is the rendering with it minus the generation prompt
    before it (what the agent loop sends at that turn)."""
    ids: list[int] = []
    target: list[bool] = []
    for i, m in enumerate(messages):
        if isinstance(m, AssistantMessage):
            prompt = tokenizer.encode_prompt(cf.render(messages[:i], tools, thinking=thinking))
            full = tokenizer.encode_prompt(cf.render(messages[: i + 1], tools, thinking=thinking))
            assert full[: len(prompt)] == prompt and prompt[: len(ids)] == ids
            target += [False] * (len(prompt) - len(ids)) + [True] * (len(full) - len(prompt))
            ids = full
    return ids, target


@pytest.mark.parametrize("thinking", [True, False])
def test_targets_are_exactly_the_assistant_turns(trajectories, tokenizer, thinking):
    for _, messages, tools in trajectories:
        assert encode_conversation(tokenizer, messages, tools, thinking=thinking) == per_turn_reference(
            tokenizer, messages, tools, thinking
        )


def test_targets_hold_tool_calls_and_answers_but_no_context(trajectories, tokenizer):
    record, messages, tools = trajectories[0]
    ids, target = encode_conversation(tokenizer, messages, tools, thinking=True)
    generated = tokenizer.decode(i for i, t in zip(ids, target, strict=True) if t)
    context = tokenizer.decode(i for i, t in zip(ids, target, strict=True) if not t)
    assert record.solution.calls[0].tool in generated
    assert generated.count(cf.EOS) == len(record.solution.calls) + 1  # one turn per call, then the answer
    assert record.task.instruction in context and record.task.instruction not in generated
    assert "## Tools" in context and "## Tools" not in generated


def test_training_prompt_is_the_agent_loops_prompt(trajectories):
    """The first generation prompt of a training trajectory equals what an Agent sends for the task: the eval's
    system prompt and the episode's tools (whose JSON layout differs from the environment's own specs)."""
    for record, messages, tools in trajectories:
        agent_tools = [t.spec() for t in Episode(record).tools()]
        sent = [SystemMessage(content=DEFAULT_SYSTEM_PROMPT), UserMessage(content=record.task.instruction)]
        assert cf.render(sent, agent_tools, thinking=True).text == cf.render(messages[:2], tools, thinking=True).text


def test_batches_cover_every_example_within_the_token_budget():
    examples = [Example(str(i), "f", 1, [0] * n, [True] * n) for i, n in enumerate([5, 90, 40, 41, 12, 100, 7])]
    batches = make_batches(examples, 200)
    assert sorted(i for b in batches for i in b) == list(range(7))
    assert all(len(b) * max(len(examples[i].ids) for i in b) <= 200 for b in batches)
    first = [next(s) for s in [batch_schedule(len(batches), 3)] for _ in range(2 * len(batches))]
    again = batch_schedule(len(batches), 3)
    assert first == [next(again) for _ in first]  # deterministic in the seed
    assert sorted(first[: len(batches)]) == list(range(len(batches)))  # each epoch is a permutation


def test_rounded_widths_keep_the_budget_and_change_no_loss(trajectories, tokenizer):
    """`Recipe.length_multiple`: batches are planned at the rounded width (so the token budget still holds) and the
    extra padding is invisible: the same rows give the same losses and hidden states padded to a multiple of 64 as
    padded to their longest row."""
    import torch

    from agentkit.backends.local.model import DSAConfig, DSATransformer
    from agentkit.training.data import collate, padded_length
    from agentkit.training.steps import hidden_states, lm_loss

    lengths = [5, 90, 40, 41, 12, 100, 7]
    examples = [Example(str(i), "f", 1, [0] * n, [True] * n) for i, n in enumerate(lengths)]
    batches = make_batches(examples, 256, multiple=64)
    assert sorted(i for b in batches for i in b) == list(range(7))
    assert all(len(b) * padded_length(max(lengths[i] for i in b), 64) <= 256 for b in batches)
    assert [padded_length(n, 64) for n in (1, 64, 65)] == [64, 64, 128]
    with pytest.raises(TrainError, match="length_multiple"):
        Recipe(length_multiple=0)

    rows = []
    for _, messages, tools in trajectories[:3]:
        ids, target = encode_conversation(tokenizer, messages, tools, thinking=True)
        rows.append(Example("t", "f", 1, ids, target, ids.index(tokenizer.special_ids[cf.USER])))
    tight = collate(rows, tokenizer.eos_id, 0.3)
    rounded = collate(rows, tokenizer.eos_id, 0.3, multiple=64)
    width = tight[0].shape[1]
    assert rounded[0].shape[1] == padded_length(width, 64) > width
    cfg = DSAConfig(vocab_size=tokenizer.vocab_size, dim=32, n_layers=1, n_heads=2, inter_dim=64, q_lora_rank=16,
                    kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=8, v_head_dim=8, index_n_heads=2,
                    index_head_dim=8, index_topk=16, max_seq_len=4096)  # fmt: skip
    model = DSATransformer(cfg)
    model.reset_parameters(torch.Generator().manual_seed(0))
    for mode in ("dense", "sparse"):
        (h1, i1, _), (h2, i2, _) = (hidden_states(model, b[0], mode, b[2].float()) for b in (tight, rounded))
        assert torch.allclose(h2[:, :width][tight[2]], h1[tight[2]], atol=1e-5)
        assert torch.allclose(i1, i2, rtol=1e-4, atol=1e-6)
        for a, b in zip(lm_loss(model, h1, tight[0], tight[1]), lm_loss(model, h2, rounded[0], rounded[1]), strict=True):
            assert torch.allclose(a, b, rtol=1e-5), (a, b)


def test_recipe_round_trips_and_rejects_unknown_fields():
    assert Recipe.from_dict(RECIPE.to_dict()) == RECIPE
    with pytest.raises(TrainError, match="unknown recipe fields"):
        Recipe.from_dict({**RECIPE.to_dict(), "learning_rate": 1})


def test_context_tokens_carry_the_context_weight_and_the_system_block_none(trajectories, tokenizer):
    """Generated tokens weigh 1; the instruction and tool results after the first user marker weigh
    `context_weight`; the system prompt and tools block (the same in every trajectory of a family) weigh 0."""
    import torch

    from agentkit.training.data import collate
    from agentkit.training.steps import lm_loss

    _, messages, tools = trajectories[0]
    ids, target = encode_conversation(tokenizer, messages, tools, thinking=True)
    user = ids.index(tokenizer.special_ids[cf.USER])
    ex = Example("t", "f", 1, ids, target, user)
    _, weight, real = collate([ex], tokenizer.eos_id, 0.25)
    w = weight[0]
    assert bool((w[: user + 1] == 0).all())
    assert bool((w[torch.tensor(target)] == 1).all())
    rest = [i for i in range(user + 1, len(ids)) if not target[i]]
    assert rest and bool((w[rest] == 0.25).all())
    _, plain, _ = collate([ex], tokenizer.eos_id, 0.0)
    assert bool((plain[0] == torch.tensor(target, dtype=torch.float)).all())

    # the weighted loss counts context tokens at their weight; the reported loss is the generated tokens' alone
    from agentkit.backends.local.model import DSAConfig, DSATransformer

    model = DSATransformer(DSAConfig(vocab_size=tokenizer.vocab_size, dim=32, n_layers=1, n_heads=2, inter_dim=64,
                                     q_lora_rank=16, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=8,
                                     v_head_dim=8, index_n_heads=2, index_head_dim=8, max_seq_len=4096)).eval()
    ids_t = torch.tensor([ids])
    h = model.norm(torch.randn(1, len(ids), 32))
    weighted, generated = lm_loss(model, h, ids_t, weight)
    only_generated, same = lm_loss(model, h, ids_t, plain)
    assert torch.allclose(generated, same) and torch.allclose(only_generated, same)
    assert not torch.allclose(weighted, generated)
    with pytest.raises(TrainError, match="context_weight"):
        Recipe(context_weight=1.0)
    with pytest.raises(TrainError, match="focus_weight"):
        Recipe(focus_weight=-0.5)


def test_turn_exact_match_counts_turns_reproduced_token_for_token():
    from agentkit.training.metrics import generated_turns, turn_exact_match

    ids = [5, 6, 7, 8, 9, 10, 11, 12]
    target = [False, False, True, True, False, True, True, True]
    assert generated_turns(target) == [(2, 4), (5, 8)]
    ex = Example("t", "f", 1, ids, target)
    perfect = lambda seq: seq[1:] + [0]  # noqa: E731  (predicts every next token)
    assert turn_exact_match(perfect, [ex]) == 1.0

    def one_miss(seq):
        out = perfect(seq)
        out[5] = 99  # position 5 predicts token 6, inside the second turn
        return out

    assert turn_exact_match(one_miss, [ex]) == 0.5
    assert turn_exact_match(lambda seq: [0] * len(seq), [ex, ex]) == 0.0


def test_training_data_is_worded_from_the_training_space_and_rendered_for_the_local_model():
    """The recipe's tasks carry varied (never held-out) wording, and their transcripts are written the local model's
    way (`LOCAL_MODEL`): a task set that is the same for every model, data design in the renderer."""
    from agentkit.envs.trajectories import LOCAL_MODEL
    from agentkit.training.data import generate_trajectories
    from agentkit.training.recipe import TINY, Recipe, TrainError

    trajectories = generate_trajectories(TINY)
    reworded = [r for r, _, _ in trajectories if r.meta.get("wording") == "train"]
    assert len(reworded) >= len(trajectories) // 2
    for record, conv, _ in trajectories:
        assert conv[1].content == record.task.instruction
        thoughts = [m.reasoning_content for m in conv if getattr(m, "tool_calls", None)]
        assert thoughts == [LOCAL_MODEL.thought(c) or None for c in record.solution.calls]
    with pytest.raises(TrainError, match="held-out phrasings are for evaluation"):
        Recipe(wording="heldout")
