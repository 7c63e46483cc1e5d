"""Environment packages: a readable folder per environment (data, tools, tasks with solution and verifier), the
gates that keep a task, and its conversion to self-contained task records. See docs/synthesis.md."""

from agentkit.envs.packages.format import (
    PACKAGE_IMPL,
    Package,
    PackageTask,
    is_package_record,
    package_of_record,
)
from agentkit.envs.packages.gates import (
    REASONS,
    GateConfig,
    PackageReport,
    TaskOutcome,
    check_package,
    check_packages,
)

__all__ = [
    "PACKAGE_IMPL", "REASONS", "GateConfig", "Package", "PackageReport", "PackageTask", "TaskOutcome",
    "check_package", "check_packages", "is_package_record", "package_of_record",
]  # fmt: skip
