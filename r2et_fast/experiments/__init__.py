"""End-to-end jobs run by the CLI."""

from r2et_fast.experiments.demo import DemoConfig, run_demo

__all__ = ["DemoConfig", "run_demo"]
