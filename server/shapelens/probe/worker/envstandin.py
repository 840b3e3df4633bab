"""An assumed reinforcement-learning environment, for an `env` constructor parameter.

RL agents take their widths from the environment they are built for (cleanrl's `QNetwork(env)`:
`nn.Linear(np.array(env.single_observation_space.shape).prod(), 120)`, `env.single_action_space.n`
actions), and the environment comes from gym, which the probe never builds (it may not be
installed, and making one runs the simulator). The stand-in answers what agents read of one: an
observation space and an action space, each both a Box (`shape`, `low`, `high`, `dtype`) and a
Discrete (`n`), for a single and for a vectorised environment (`single_*_space`), with sizes the
assumption gives (distinct widths, so a width used for another shows).
"""

from __future__ import annotations

import ast
import re
from typing import Any

ENV_NAME = re.compile(r"^(env|envs|environment|environments|venv|vec_env|train_env|eval_env)$")


def reads_spaces(node: ast.AST | None) -> bool:
    """Whether the class reads a gym space (`env.single_observation_space`, `env.action_space`):
    an `env` that has others (`env.obs_dim`) is a config, its attributes assumed by name."""
    return node is not None and any(isinstance(n, ast.Attribute) and n.attr.endswith(("observation_space",
                                                                                     "action_space"))
                                    for n in ast.walk(node))


def _array(shape: tuple[int, ...], value: float) -> Any:
    try:
        import numpy as np
    except ImportError:  # the probe's interpreter has torch without numpy
        import torch

        return torch.full(shape, value)
    return np.full(shape, value, dtype=np.float32)


class AssumedSpace:
    def __init__(self, n: int, shape: tuple[int, ...]) -> None:
        self.n = n
        self.shape = shape
        self.low = _array(shape, -1.0)
        self.high = _array(shape, 1.0)
        self.dtype = "float32"

    def __repr__(self) -> str:
        return f"AssumedSpace(n={self.n}, shape={self.shape})"


class AssumedEnv:
    def __init__(self, observations: int, actions: int, action_shape: int) -> None:
        self.single_observation_space = self.observation_space = AssumedSpace(observations, (observations,))
        self.single_action_space = self.action_space = AssumedSpace(actions, (action_shape,))
        self.num_envs = 1

    def __repr__(self) -> str:
        obs, act = self.single_observation_space, self.single_action_space
        return f"an assumed environment (observations {obs.shape}, {act.n} actions or {act.shape})"
