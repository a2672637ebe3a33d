"""Adam and AdamW: bias-corrected moving averages of the gradient and its square."""

from __future__ import annotations


from .._validation import check_bool, check_range
from .base import Optimizer


class Adam(Optimizer):
    r"""Adam (optionally AMSGrad), as ``torch.optim.Adam``.

    .. math::

        \begin{aligned}
        g_t &\leftarrow \nabla_\theta f_t(\theta_{t-1})
            \quad (-\nabla_\theta f_t \text{ if maximize}) \\
        g_t &\leftarrow g_t + \lambda\,\theta_{t-1}
            && \text{if weight\_decay } \lambda \ne 0 \text{ (Adam: L2 penalty)} \\
        \theta_{t-1} &\leftarrow \theta_{t-1}\,(1 - \gamma\lambda)
            && \text{instead, for AdamW (decoupled decay)} \\
        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
        v_t &\leftarrow \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \\
        \hat v_t &\leftarrow \max(\hat v_{t-1}, v_t)
            && \text{if amsgrad, else } \hat v_t = v_t \\
        \theta_t &\leftarrow \theta_{t-1} - \frac{\gamma}{1-\beta_1^t}\,
            \frac{m_t}{\sqrt{\hat v_t}\,/\sqrt{1-\beta_2^t} + \epsilon}
        \end{aligned}

    with :math:`m_0 = v_0 = \hat v_0 = 0`, learning rate :math:`\gamma` (``lr``) and
    ``betas`` :math:`(\beta_1, \beta_2)`. Both moments are bias-corrected and :math:`\epsilon`
    is added after the square root of the corrected second moment.

    The seeds' variants: seed 004's Adam (``v <- beta1 v + (1-beta1) g``,
    ``s <- beta2 s + (1-beta2) g**2``, both bias-corrected, ``w <- w - eta v_hat /
    (sqrt(s_hat) + eps)``) is exactly this rule with ``betas=(beta1, beta2), lr=eta``.
    Seed 000's garbled pseudocode is meant to be the same algorithm.

    Parameters
    ----------
    params : list of arrays or of param groups
        float16, float32 or float64; float16 is stored as float16 and computed in float32
        (see :class:`~fastdescent.Optimizer`).
    lr : float or callable ``step -> lr``, default 1e-3
    betas : (float, float) each in [0, 1), default (0.9, 0.999)
    eps : float >= 0, default 1e-8
    weight_decay : float >= 0, default 0
    amsgrad : bool, default False
    maximize : bool, default False
    backend : {"cpp", "numba", "numpy"} or None, keyword only

    State per param: ``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (amsgrad).

    Examples
    --------
    >>> import numpy as np, fastdescent as fd
    >>> w = np.array([1.0, -2.0])
    >>> opt = fd.Adam([w], lr=0.1)
    >>> opt.step([2 * w])          # the first step moves each coordinate by about lr
    >>> w.round(6)
    array([ 0.9, -1.9])
    """

    _kind = "adam"
    _state_keys = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, maximize=False, *, backend=None):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize), backend=backend)

    def _check_options(self, options, name):
        betas = options["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{name('betas')} must be a pair (beta1, beta2), got {betas!r}")
        options["betas"] = (
            check_range(betas[0], f"{name('betas')}[0]", 0, 1, high_open=True),
            check_range(betas[1], f"{name('betas')}[1]", 0, 1, high_open=True))
        options["eps"] = check_range(options["eps"], name("eps"), 0)
        options["weight_decay"] = check_range(options["weight_decay"], name("weight_decay"), 0)
        options["amsgrad"] = check_bool(options["amsgrad"], name("amsgrad"))

    def _needed_state(self, options):
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if options["amsgrad"] else ())

    def _kernel_options(self, options):
        beta1, beta2 = options["betas"]
        return {"lr": options["lr"], "beta1": beta1, "beta2": beta2, "eps": options["eps"],
                "weight_decay": options["weight_decay"],
                "decoupled_weight_decay": self._decoupled_weight_decay,
                "amsgrad": options["amsgrad"], "maximize": options["maximize"]}


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    The update is :class:`Adam`'s, except that weight decay shrinks the params directly
    instead of entering the gradient:

    .. math::

        \theta_{t-1} \leftarrow \theta_{t-1}\,(1 - \gamma\lambda), \quad\text{then the Adam
        update with } g_t \text{ unchanged.}

    Same arguments as :class:`Adam`, but ``weight_decay`` defaults to ``1e-2``.

    Examples
    --------
    >>> import numpy as np, fastdescent as fd
    >>> w = np.array([1.0, -2.0])
    >>> opt = fd.AdamW([w], lr=0.1, weight_decay=0.1)
    >>> opt.step([np.zeros(2)])    # no gradient: only the decay acts
    >>> w
    array([ 0.99, -1.98])
    """

    _decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, maximize=False, *, backend=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, backend=backend)
