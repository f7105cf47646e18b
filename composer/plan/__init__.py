"""Plan stage (pure): scenes -> outputs -> segments -> chunks, in whole frames."""

from composer.plan.model import Plan
from composer.plan.planner import make_plan

__all__ = ["Plan", "make_plan"]
