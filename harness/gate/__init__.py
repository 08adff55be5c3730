"""The regression gate: two results documents in, failures out. No running, no timing."""
from harness.gate.compare import GateOutcome, compare
from harness.gate.policy import Check, Policy, default_policy, load_policy

__all__ = ["Check", "GateOutcome", "Policy", "compare", "default_policy", "load_policy"]
