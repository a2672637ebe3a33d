"""Stochastic gradient descent, with momentum and Nesterov momentum."""

from __future__ import annotations


from .._validation import check_bool, check_range
from .base import Optimizer


class SGD(Optimizer):
    r"""Stochastic gradient descent (optionally with momentum), as ``torch.optim.SGD``.

    .. math::

        \begin{aligned}
        g_t &\leftarrow \nabla_\theta f_t(\theta_{t-1})
            \quad (-\nabla_\theta f_t \text{ if maximize}) \\
        g_t &\leftarrow g_t + \lambda\,\theta_{t-1}
            && \text{if weight\_decay } \lambda \ne 0 \\
        b_t &\leftarrow \begin{cases} g_t & t = 1 \\
                         \mu\, b_{t-1} + (1-\tau)\, g_t & t > 1 \end{cases}
            && \text{if momentum } \mu \ne 0 \\
        g_t &\leftarrow \begin{cases} g_t + \mu\, b_t & \text{nesterov} \\
                         b_t & \text{otherwise} \end{cases}
            && \text{if } \mu \ne 0 \\
        \theta_t &\leftarrow \theta_{t-1} - \gamma\, g_t
        \end{aligned}

    with learning rate :math:`\gamma` (``lr``) and dampening :math:`\tau`. The momentum
    buffer :math:`b` starts as the first gradient, undamped.

    The seeds' variants:

    * plain gradient descent ``w <- w - alpha * grad`` (seeds 000, 001): ``SGD(params,
      lr=alpha)``;
    * momentum as a velocity ``v <- rho v + g; w <- w - lr v`` (seeds 001, 004):
      ``momentum=rho``;
    * momentum as a leaky average ``v <- beta v + (1 - beta) g`` (seed 004's code):
      ``momentum=beta, dampening=beta``; the first step differs (torch and fastdescent
      start the buffer at ``g``, the seed at ``(1 - beta) g``), after which the rules agree;
    * Nesterov momentum (seeds 000, 002): ``momentum=mu, nesterov=True``.

    Parameters
    ----------
    params : list of arrays or of param groups
        float16, float32 or float64; float16 is stored as float16 and computed in float32
        (see :class:`~fastdescent.Optimizer`).
    lr : float or callable ``step -> lr``, default 1e-3
    momentum : float >= 0, default 0
    dampening : float, default 0
    weight_decay : float >= 0, default 0 (L2 penalty added to the gradient)
    nesterov : bool, default False (needs momentum > 0 and dampening == 0)
    maximize : bool, default False (ascend instead of descend)
    backend : {"cpp", "numba", "numpy"} or None, keyword only (None: the default backend)

    State per param: ``momentum_buffer`` (when momentum != 0).

    Examples
    --------
    >>> import numpy as np, fastdescent as fd
    >>> w = np.array([1.0, -2.0])
    >>> opt = fd.SGD([w], lr=0.1, momentum=0.9)
    >>> opt.step([2 * w])          # gradient of sum(w**2)
    >>> w
    array([ 0.8, -1.6])
    """

    _kind = "sgd"
    _state_keys = ("momentum_buffer",)

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, maximize=False, *, backend=None):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize), backend=backend)

    def _check_options(self, options, name):
        options["momentum"] = check_range(options["momentum"], name("momentum"), 0)
        options["dampening"] = check_range(options["dampening"], name("dampening"))
        options["weight_decay"] = check_range(options["weight_decay"], name("weight_decay"), 0)
        options["nesterov"] = check_bool(options["nesterov"], name("nesterov"))
        if options["nesterov"] and (options["momentum"] <= 0 or options["dampening"] != 0):
            raise ValueError(f"{name('nesterov')}=True needs momentum > 0 and dampening == 0, "
                             f"got momentum={options['momentum']}, "
                             f"dampening={options['dampening']}")

    def _needed_state(self, options):
        return ("momentum_buffer",) if options["momentum"] != 0 else ()

    def _state_created(self, i, key):
        # A new buffer is filled with the param's next gradient (the kernel's first step).
        self._steps[i] = 0

    def _kernel_options(self, options):
        return {k: options[k] for k in ("lr", "momentum", "dampening", "weight_decay",
                                        "nesterov", "maximize")}
