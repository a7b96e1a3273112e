"""Micro-expression stage (placeholder written by the lead so the config can import
MicroConfig; the micro-expression engineer replaces this file)."""
from dataclasses import dataclass, field


@dataclass
class MicroConfig:
    """Section ``[micro]``."""
    enabled: bool = field(default=False, metadata={"doc": "micro-expression stage (off)"})
