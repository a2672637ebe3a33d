"""RMSprop: step sizes from a leaky average of squared gradients."""

from __future__ import annotations


from .._validation import check_bool, check_range
from .base import Optimizer


class RMSprop(Optimizer):
    r"""RMSprop, as ``torch.optim.RMSprop``.

    .. math::

        \begin{aligned}
        g_t &\leftarrow \nabla_\theta f_t(\theta_{t-1})
            \quad (-\nabla_\theta f_t \text{ if maximize}) \\
        g_t &\leftarrow g_t + \lambda\,\theta_{t-1}
            && \text{if weight\_decay } \lambda \ne 0 \\
        v_t &\leftarrow \alpha\, v_{t-1} + (1-\alpha)\, g_t^2 \\
        \bar g_t &\leftarrow \alpha\, \bar g_{t-1} + (1-\alpha)\, g_t,\quad
            \tilde v_t \leftarrow v_t - \bar g_t^2
            && \text{if centered, else } \tilde v_t = v_t \\
        b_t &\leftarrow \mu\, b_{t-1} + g_t / (\sqrt{\tilde v_t} + \epsilon),\quad
            \theta_t \leftarrow \theta_{t-1} - \gamma\, b_t
            && \text{if momentum } \mu > 0 \\
        \theta_t &\leftarrow \theta_{t-1} - \gamma\, g_t / (\sqrt{\tilde v_t} + \epsilon)
            && \text{otherwise}
        \end{aligned}

    with all averages starting at zero; :math:`\epsilon` is added *outside* the root.

    The seeds' variants: seeds 001 and 004 write ``s <- gamma s + (1 - gamma) g**2`` and
    ``w <- w - eta g / sqrt(s + eps)`` (epsilon inside the root, 1e-6): ``alpha=gamma,
    lr=eta``, with ``eps`` about ``sqrt(eps_seed)`` (1e-3); the two agree wherever ``s`` is
    much larger than ``eps_seed`` and differ only in how the division by a tiny ``s`` is
    guarded.

    Parameters
    ----------
    params : list of arrays or of param groups
        float16, float32 or float64; float16 is stored as float16 and computed in float32
        (see :class:`~fastdescent.Optimizer`).
    lr : float or callable ``step -> lr``, default 1e-2
    alpha : float in [0, 1], default 0.99
    eps : float >= 0, default 1e-8
    weight_decay : float >= 0, default 0
    momentum : float >= 0, default 0
    centered : bool, default False
    maximize : bool, default False
    backend : {"cpp", "numba", "numpy"} or None, keyword only

    State per param: ``step``, ``square_avg``, ``momentum_buffer`` (momentum > 0),
    ``grad_avg`` (centered).

    Examples
    --------
    >>> import numpy as np, fastdescent as fd
    >>> w = np.array([1.0, -2.0])
    >>> opt = fd.RMSprop([w], lr=0.01, alpha=0.9)
    >>> opt.step([2 * w])
    >>> w.round(4)
    array([ 0.9684, -1.9684])
    """

    _kind = "rmsprop"
    _state_keys = ("step", "square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, maximize=False, *, backend=None):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize),
                         backend=backend)

    def _check_options(self, options, name):
        options["alpha"] = check_range(options["alpha"], name("alpha"), 0, 1)
        options["eps"] = check_range(options["eps"], name("eps"), 0)
        options["weight_decay"] = check_range(options["weight_decay"], name("weight_decay"), 0)
        options["momentum"] = check_range(options["momentum"], name("momentum"), 0)
        options["centered"] = check_bool(options["centered"], name("centered"))

    def _needed_state(self, options):
        return (("square_avg",) + (("grad_avg",) if options["centered"] else ())
                + (("momentum_buffer",) if options["momentum"] > 0 else ()))

    def _kernel_options(self, options):
        return {k: options[k] for k in ("lr", "alpha", "eps", "weight_decay", "momentum",
                                        "centered", "maximize")}
