"""File-system task templates."""

from __future__ import annotations

from agentkit.envs.errors import GenerationError
from agentkit.envs.families.filesystem.model import LEVELS, USERS
from agentkit.envs.family import Anchored, GoalBuilder, pick


def _service(g: GoalBuilder) -> str:
    w = g.w
    F = w.c("files")
    free = [s for s in w.data["services"] if (F, f"{w.data['root']}/{s}.conf") not in w.claimed]
    if not free:
        raise GenerationError("no service")
    svc = pick(g.rng, free)
    g.claim(F, f"{w.data['root']}/{svc}.conf")
    return svc


def _read_conf(g: GoalBuilder, svc: str, purpose: str) -> tuple[str, dict[str, str]]:
    """Lists the config directory, then reads SVC's file. The read's thought says what the file is read for (`purpose`,
    in the setting's own name): the answer then copies that name from nearby. Without it, on 1,000 held-out tasks (seed
    7,770,039), the commonest failed config question answered the other setting (`workers = 2` for a port)."""
    root = g.w.data["root"]
    listing = g.find_all("list_dir", f"The configs live under {root}; I list it to find {svc}'s file.", path=root)
    if not any(e["name"] == f"{svc}.conf" for e in listing):
        raise GenerationError("config not listed")
    text = g.do("read_file", f"Reading {root}/{svc}.conf {purpose}.", path=f"{root}/{svc}.conf")["content"]
    values = dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line)
    return text, values


def config_value(g: GoalBuilder) -> None:
    svc = _service(g)
    key = pick(g.rng, ("port", "workers"))
    _, values = _read_conf(g, svc, f"for its {key} setting")
    value = int(values[key])
    g.hide(value)
    root = g.w.data["root"]  # said in the instruction: one of three directories, which no tool call could reveal
    g.say(pick(g.rng, (f"What {'port does' if key == 'port' else 'worker count does'} the {svc} service use? "
                       f"Its config file is in the application config directory, {root}.",
                       f"Find the {svc} service's configuration under {root} and tell me its {key} setting.")))
    g.answer_number(value, f"The {svc} service has {key} = {value}.",
                    f"The {key} setting: the file says {key} = {value}.", 0)


def set_level(g: GoalBuilder) -> None:
    w = g.w
    svc = _service(g)
    text, values = _read_conf(g, svc, "to change its log_level")
    level = pick(g.rng, [lv for lv in LEVELS if lv != values["log_level"]])
    path = f"{w.data['root']}/{svc}.conf"
    old, new = f"log_level = {values['log_level']}", f"log_level = {level}"
    if w.has("replace_in_file") and g.rng.random() < 0.7:
        g.do("replace_in_file", Anchored(f"The log level of the {svc} service to {level}",
                                         f"replacing '{old}' with '{new}'."), path=path, old=old, new=new)
    else:
        # The thought restates "service to LEVEL" in the instruction's words, so the new level is a copy that
        # continues a matching phrase. It was not enough: trained on it, the model still wrote the old line back (0 of
        # 9 rewrites on seed 7,770,027), copying the file it had just read, line after line (README, What still fails).
        g.do("write_file", Anchored(f"The log level of the {svc} service to {level}", "writing the file back with "
             f"log_level = {level} and nothing else changed."), path=path, content=text.replace(old, new))
    g.expect(w.c("files"), path, w.f("content"), text.replace(old, new))
    g.say(f"Set the log level of the {svc} service to {level} in its config file (in {w.data['root']}); leave "
          "everything else as is.")


def _logs(g: GoalBuilder, svc: str, thought: str, larger_than: int | None = None) -> list[dict]:
    """The .log files directly in /var/log/SVC (over `larger_than` bytes, if given), as the filtered listing returns
    them: the tool does the choosing, so the reference shows the agent passing filters rather than picking by eye."""
    return g.find_all("list_dir", thought, path=f"/var/log/{svc}", suffix=".log", larger_than=larger_than)


def _claim_dir(g: GoalBuilder, prefix: str) -> None:
    F = g.w.c("files")
    g.claim(F, *[p for p, _ in g.w.ws.records(F) if p.startswith(prefix)])


def archive_logs(g: GoalBuilder) -> None:
    w = g.w
    svc = pick(g.rng, w.data["services"])
    _claim_dir(g, f"/var/log/{svc}/")
    sizes = sorted(r[w.f("size")] for p, r in w.ws.records(w.c("files"))
                   if p.startswith(f"/var/log/{svc}/") and p.endswith(".log"))
    if len(sizes) < 2:
        raise GenerationError("too few logs")
    kb = (sizes[g.rng.randrange(len(sizes) - 1)] // 1024) + 1
    limit = g.param("log archiving threshold", kb, f"{kb} KiB ({kb} x 1024 bytes)")
    # The calculator converts, never the model's head: the model trained on "814 x 1024 = 833536" wrote the product
    # wrong or not at all (2 of 25 such tasks passed); with the tool, every digit of the limit is a copy.
    limit_bytes = g.calc(f"{kb} * 1024", f"The limit is {kb} KiB ({kb} x 1024 bytes); computing it in bytes.")
    big = _logs(g, svc, f"That is {limit_bytes} bytes; I list the .log files in /var/log/{svc} larger than that.",
                larger_than=limit_bytes)
    if not big:
        raise GenerationError("nothing to archive")
    for e in big:
        src, dst = f"/var/log/{svc}/{e['name']}", f"/archive/{svc}/{e['name']}"
        g.do("move_file", f"{e['name']} is {e['size']} bytes (> {kb} KiB): moving it.", source=src, destination=dst)
        g.expect(w.c("files"), dst, w.f("path"), dst)
        g.hide(e["name"])
    g.say(f"Move every .log file in /var/log/{svc} larger than {limit} to /archive/{svc}/, "
          "keeping the file names.")


def clean_tmp(g: GoalBuilder) -> None:
    w = g.w
    owner = pick(g.rng, USERS)
    _claim_dir(g, "/tmp/scratch/")
    # "owned by the user 'X'" restated from the instruction: opening on a bare owner name, the model wrote "svc".
    mine = g.find_all("list_dir", Anchored(f"Files owned by the user '{owner}'", "I list /tmp/scratch filtered to "
                      f"owner {owner}."), path="/tmp/scratch", owner=owner)
    if not mine:
        raise GenerationError("nothing owned")
    for e in mine:
        g.do("delete_file", f"{e['name']} belongs to {owner}; deleting.", path=f"/tmp/scratch/{e['name']}")
        g.expect(w.c("files"), f"/tmp/scratch/{e['name']}", None, None, "absent")
        g.hide(e["name"])
    g.say(f"Delete all files in /tmp/scratch that are owned by the user '{owner}'.")


def log_volume(g: GoalBuilder) -> None:
    svc = pick(g.rng, g.w.data["services"])
    total = g.sum_all("list_dir", "size", f"I list the .log files in /var/log/{svc} with their sizes added up.",
                      path=f"/var/log/{svc}", suffix=".log")
    g.hide(total)
    g.say(f"How many bytes do the .log files directly in /var/log/{svc} take up altogether?")
    g.answer_number(total, f"The {svc} logs take {total} bytes.", f"The result's sum is {total}.", 0)


ATOMS = [config_value, set_level, archive_logs, clean_tmp, log_volume]
