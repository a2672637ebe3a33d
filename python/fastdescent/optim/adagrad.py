"""Adagrad: per-coordinate step sizes from the running sum of squared gradients."""

from __future__ import annotations


from .._validation import check_range
from .base import Optimizer


class Adagrad(Optimizer):
    r"""Adagrad, as ``torch.optim.Adagrad``.

    .. math::

        \begin{aligned}
        g_t &\leftarrow \nabla_\theta f_t(\theta_{t-1})
            \quad (-\nabla_\theta f_t \text{ if maximize}) \\
        g_t &\leftarrow g_t + \lambda\,\theta_{t-1}
            && \text{if weight\_decay } \lambda \ne 0 \\
        \tilde\gamma &\leftarrow \gamma / (1 + (t-1)\,\eta) \\
        s_t &\leftarrow s_{t-1} + g_t^2, \qquad s_0 = \text{initial\_accumulator\_value} \\
        \theta_t &\leftarrow \theta_{t-1} - \tilde\gamma\, \frac{g_t}{\sqrt{s_t} + \epsilon}
        \end{aligned}

    with learning rate :math:`\gamma` (``lr``) and learning-rate decay :math:`\eta`
    (``lr_decay``); :math:`\epsilon` is added *outside* the square root.

    The seeds' variants: seed 004 puts epsilon inside the root,
    ``w <- w - eta g / sqrt(s + eps)`` with ``s`` starting at 0. The same rule follows from
    ``initial_accumulator_value=eps_seed`` (then :math:`s_t` = the seed's ``s + eps``) with a
    negligible ``eps`` (say ``1e-30``).

    Parameters
    ----------
    params : list of arrays or of param groups
        float16, float32 or float64; float16 is stored as float16 and computed in float32
        (see :class:`~fastdescent.Optimizer`).
    lr : float or callable ``step -> lr``, default 1e-2
    lr_decay : float >= 0, default 0
    weight_decay : float >= 0, default 0
    initial_accumulator_value : float >= 0, default 0
    eps : float >= 0, default 1e-10
    maximize : bool, default False
    backend : {"cpp", "numba", "numpy"} or None, keyword only

    State per param: ``step``, ``sum``.

    Examples
    --------
    >>> import numpy as np, fastdescent as fd
    >>> w = np.array([1.0, -2.0])
    >>> opt = fd.Adagrad([w], lr=0.5)
    >>> opt.step([2 * w])
    >>> w.round(6)
    array([ 0.5, -1.5])
    """

    _kind = "adagrad"
    _state_keys = ("step", "sum")

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0,
                 initial_accumulator_value=0, eps=1e-10, maximize=False, *, backend=None):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize), backend=backend)

    def _check_options(self, options, name):
        options["lr_decay"] = check_range(options["lr_decay"], name("lr_decay"), 0)
        options["weight_decay"] = check_range(options["weight_decay"], name("weight_decay"), 0)
        options["initial_accumulator_value"] = check_range(
            options["initial_accumulator_value"], name("initial_accumulator_value"), 0)
        options["eps"] = check_range(options["eps"], name("eps"), 0)

    def _needed_state(self, options):
        return ("sum",)

    def _initial_value(self, key, options):
        return options["initial_accumulator_value"]

    def _kernel_options(self, options):
        return {k: options[k] for k in ("lr", "lr_decay", "weight_decay", "eps", "maximize")}
