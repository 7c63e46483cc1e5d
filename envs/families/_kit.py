"""Shared building blocks for families, so that a family writes only its domain logic:

- `_kit_builder`: the tool builder that varies names and signatures; the standard find and get tools.
- `_kit_records`: generic record operations (get / find with filters, sorting, pagination and sums / update /
  delete) and the counter and reservation helpers of families' own operations.
- `_kit_standard`: ready-made tools with their operations (corpus search, data files, calculator, distractors).
- `_kit_world`: assembling a world, the shared vocabulary, helpers for task templates.

This module holds `OPS`, the operations a tool names as `kit.<op>` (see `agentkit.envs.families.resolve`), and
re-exports the names of the modules above, so code that imports them from here keeps working.
"""

from __future__ import annotations

from agentkit.envs.families._kit_builder import (
    ORDER_BY,
    PAGING_STYLES,
    STR,
    SUM_OF,
    P,
    S,
    add_choosing_params,
    find_tool,
    get_tool,
    make_tool,
    paging_config,
    paging_params,
)
from agentkit.envs.families._kit_records import (
    close_reservation,
    decode_cursor,
    encode_cursor,
    filter_tests,
    op_delete,
    op_find,
    op_get,
    op_update,
    paginate,
    require,
    return_unit,
    take_unit,
    with_id,
)
from agentkit.envs.families._kit_standard import (
    MAX_EXPRESSION,
    calculator_tool,
    data_tools,
    distractor_tools,
    evaluate_arithmetic,
    op_calculate,
    op_file_info,
    op_noop_list,
    op_read_doc,
    op_read_rows,
    op_search_docs,
    op_status,
    op_today,
    search_tools,
)
from agentkit.envs.families._kit_world import (
    FIRST_NAMES,
    HANDBOOK_MIN_DIFFICULTY,
    HANDBOOK_TOPICS,
    LAST_NAMES,
    MONTH_NAMES,
    MONTHS,
    family_builder,
    handbook,
    id_key,
    ids,
    make_world,
    only,
    people,
    policy_doc,
    size_for,
    vocab,
)
from agentkit.envs.family import pick

OPS = {
    "calculate": op_calculate,
    "get": op_get, "find": op_find, "update": op_update, "delete": op_delete,
    "search_docs": op_search_docs, "read_doc": op_read_doc, "file_info": op_file_info, "read_rows": op_read_rows,
    "today": op_today, "status": op_status, "noop_list": op_noop_list,
}

__all__ = [
    "FIRST_NAMES", "HANDBOOK_MIN_DIFFICULTY", "HANDBOOK_TOPICS", "LAST_NAMES", "MAX_EXPRESSION", "MONTHS",
    "MONTH_NAMES", "OPS", "ORDER_BY", "PAGING_STYLES", "STR", "SUM_OF", "P", "S", "add_choosing_params",
    "calculator_tool", "close_reservation", "data_tools", "decode_cursor", "distractor_tools", "encode_cursor",
    "evaluate_arithmetic", "family_builder", "filter_tests", "find_tool", "get_tool", "handbook", "id_key", "ids",
    "make_tool", "make_world", "only", "op_calculate", "op_delete", "op_file_info", "op_find", "op_get",
    "op_noop_list", "op_read_doc", "op_read_rows", "op_search_docs", "op_status", "op_today", "op_update", "paginate",
    "paging_config", "paging_params", "people", "pick", "policy_doc", "require", "return_unit", "search_tools",
    "size_for", "take_unit", "vocab", "with_id",
]
