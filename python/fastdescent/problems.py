r"""Test functions from the seed documents, with their derivatives and known optima.

Each problem is an object with

* ``value(x)`` :math:`f(x)`, ``gradient(x)`` :math:`\nabla f(x)`, ``hessian(x)``
  :math:`\nabla^2 f(x)`, and ``fun_grad(x) -> (f, ∇f)``, ``fun_grad_hess(x) -> (f, ∇f, ∇²f)``
  to hand to :func:`fastdescent.minimize` and :func:`fastdescent.newton`;
* ``minima``, ``saddle_points``, ``maxima``: the known stationary points, ``(k, n)`` arrays
  (for the periodic :class:`XCos`, those inside ``bounds``), and ``global_minimum``;
* ``start``, the point the seeds start from, and ``bounds``, an ``(n, 2)`` array of
  ``[low, high]`` per coordinate: the domain to draw.

``x`` is a NumPy array of shape ``(n,)``, also for the one-dimensional functions
(shape ``(1,)``). ``value`` also takes ``(n, ...)`` arrays, many points at once (a grid for a
contour map), and returns an array of the trailing shape. Computations keep float32 when
``x`` is float32 and use float64 otherwise.

* ``XCos(c=pi)``: :math:`x \cos(c x)`, on :math:`[-1, 2]` at :math:`c = \pi` (seed 004:
  local minima, non-convexity)
* ``Saddle()``: :math:`x^2 - y^2` (seed 004: saddle point)
* ``Tanh()``: :math:`\tanh x` from :math:`x = 4` (seed 004: vanishing gradient)
* ``Cosh(c=0.5)``: :math:`\cosh(c x)` from :math:`x = 10` (seed 004: Newton's method)
* ``Quadratic([2.0])``: :math:`2 x^2` (learning rate too small, right, too large)
* ``Quadratic([0.1, 2.0])``: :math:`0.1 x_1^2 + 2 x_2^2`, ill-conditioned (seed 004:
  momentum, Adagrad, RMSProp, Adam)
* ``Rosenbrock()``: :math:`(a - x)^2 + b (y - x^2)^2`; ``Beale()``:
  :math:`\sum_i (c_i - x + x y^i)^2`; ``Himmelblau()``:
  :math:`(x^2 + y - 11)^2 + (x + y^2 - 7)^2` (classic 2-D test functions)

:func:`catalog` returns these, as the seeds use them, and ``XCos(0.15 * pi)`` from
``x = 10``: the non-convex function on which plain Newton goes wrong. Seed 004 states that
Newton "may fail ... if the Hessian is ... not positive definite" without an example; this
one comes from the text its Newton code follows (Dive into Deep Learning, section 12.3).

>>> import numpy as np, fastdescent as fd
>>> f = fd.problems.Rosenbrock()
>>> f.value(np.array([1.0, 1.0])), f.gradient(np.array([1.0, 1.0]))
(0.0, array([0., 0.]))
>>> f.global_minimum
array([1., 1.])
"""

from __future__ import annotations

import math

import numpy as np

from ._validation import check_range, check_real

__all__ = ["Problem", "XCos", "Saddle", "Tanh", "Cosh", "Quadratic", "Rosenbrock", "Beale",
           "Himmelblau", "catalog"]


def _frozen(array) -> np.ndarray:
    array = np.array(array, dtype=np.float64)
    array.setflags(write=False)
    return array


def _as_float(x, name: str) -> np.ndarray:
    """``x`` as a float32 or float64 array (other real dtypes become float64)."""
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        if x.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be an array of real numbers, got dtype {x.dtype}")
        x = x.astype(np.float64)
    return x


def _points(points, dim: int) -> np.ndarray:
    return _frozen(np.reshape(np.asarray(points, dtype=np.float64), (-1, dim)))


class Problem:
    r"""Base of the test functions: a smooth :math:`f: \mathbb{R}^n \to \mathbb{R}`.

    Subclasses set ``dim``, ``formula`` and the stationary points, and implement
    ``_value`` (for ``(n, ...)`` arrays), ``_gradient`` and ``_hessian`` (for ``(n,)``).

    Parameters
    ----------
    start : array of shape (n,), optional, keyword only
        The default start point.
    bounds : array of shape (n, 2), optional, keyword only
        The drawing domain, ``[low, high]`` per row.

    Examples
    --------
    >>> import numpy as np, fastdescent as fd
    >>> f = fd.problems.Quadratic([0.1, 2.0], start=[-5.0, -2.0])
    >>> f.fun_grad(f.start)
    (10.5, array([-1., -8.]))
    >>> f.hessian(f.start)
    array([[0.2, 0. ],
           [0. , 4. ]])
    """

    dim: int = 0
    formula: str = ""

    def __init__(self, *, start=None, bounds=None, default_start=None, default_bounds=None,
                 minima=(), saddle_points=(), maxima=()):
        n = self.dim
        self.start = _frozen(self._checked_point(default_start if start is None else start,
                                                 "start"))
        bounds = default_bounds if bounds is None else bounds
        try:
            bounds = np.array(bounds, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError("bounds must be an (n, 2) array of numbers") from None
        if bounds.shape != (n, 2):
            raise ValueError(f"bounds must have shape ({n}, 2), got {bounds.shape}")
        if not np.all(np.isfinite(bounds)) or np.any(bounds[:, 0] >= bounds[:, 1]):
            raise ValueError(f"bounds must be finite with low < high in each row, got "
                             f"{bounds.tolist()}")
        self.bounds = _frozen(bounds)
        self.minima = _points(minima, n)
        self.saddle_points = _points(saddle_points, n)
        self.maxima = _points(maxima, n)

    # ------------------------------------------------------------------------ the function

    def _checked_point(self, x, name: str = "x") -> np.ndarray:
        x = _as_float(x, name)
        if x.shape != (self.dim,):
            raise ValueError(f"{name} must have shape ({self.dim},), got {x.shape}")
        return x

    def value(self, x) -> float | np.ndarray:
        """:math:`f(x)`: a float for ``x`` of shape ``(n,)``; for ``(n, ...)``, the values at
        every point, of shape ``x.shape[1:]``."""
        x = _as_float(x, "x")
        if x.ndim == 0 or x.shape[0] != self.dim:
            raise ValueError(f"x must have shape ({self.dim},) or ({self.dim}, ...), "
                             f"got {x.shape}")
        value = self._value(x)
        return float(value) if x.ndim == 1 else np.asarray(value)

    def gradient(self, x) -> np.ndarray:
        """:math:`\\nabla f(x)`, shape ``(n,)``."""
        return self._gradient(self._checked_point(x))

    def hessian(self, x) -> np.ndarray:
        """:math:`\\nabla^2 f(x)`, shape ``(n, n)``."""
        return self._hessian(self._checked_point(x))

    def fun_grad(self, x) -> tuple[float, np.ndarray]:
        """``(value(x), gradient(x))``, the argument :func:`fastdescent.minimize` takes."""
        x = self._checked_point(x)
        return float(self._value(x)), self._gradient(x)

    def fun_grad_hess(self, x) -> tuple[float, np.ndarray, np.ndarray]:
        """``(value(x), gradient(x), hessian(x))``, what :func:`fastdescent.newton` takes."""
        x = self._checked_point(x)
        return float(self._value(x)), self._gradient(x), self._hessian(x)

    def _value(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def _gradient(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def _hessian(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------------ what is known

    @property
    def global_minimum(self) -> np.ndarray | None:
        """The known minimum of lowest value (within ``bounds`` for periodic functions), or
        None when :math:`f` has no minimum."""
        if len(self.minima) == 0:
            return None
        values = [float(self.value(m)) for m in self.minima]
        return self.minima[int(np.argmin(values))]

    def _args(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._args()})"


def _stationary_points_1d(gradient, hessian, low: float, high: float, samples: int = 4001):
    """Zeros of a smooth 1-D gradient on [low, high], by sign changes on a grid refined with
    bisection, sorted into (minima, maxima)."""
    grid = np.linspace(low, high, samples)
    g = gradient(grid)
    minima: list[float] = []
    maxima: list[float] = []
    for i in np.flatnonzero(np.sign(g[:-1]) * np.sign(g[1:]) < 0):
        a, b, ga = float(grid[i]), float(grid[i + 1]), float(g[i])
        for _ in range(200):
            mid = 0.5 * (a + b)
            if mid in (a, b):
                break
            gm = float(gradient(np.array(mid)))
            if gm == 0.0:
                a = b = mid
                break
            if (gm < 0) == (ga < 0):
                a, ga = mid, gm
            else:
                b = mid
        point = 0.5 * (a + b)
        (minima if float(hessian(np.array(point))) > 0 else maxima).append(point)
    return minima, maxima


class XCos(Problem):
    r""":math:`f(x) = x \cos(c x)`: seed 004's non-convex function (:math:`c = \pi` on
    :math:`[-1, 2]`, a local and a global minimum) and the function on which plain Newton
    goes wrong (:math:`c = 0.15 \pi` from :math:`x = 10`, the example of Dive into Deep
    Learning section 12.3, which seed 004's Newton code follows).

    .. math::

        f'(x) = \cos(c x) - c x \sin(c x), \qquad
        f''(x) = -2 c \sin(c x) - c^2 x \cos(c x)

    Default bounds :math:`[-\pi/c, 2\pi/c]` (:math:`[-1, 2]` at :math:`c = \pi`), default
    start :math:`1.5\pi/c` (:math:`x = 10` at :math:`c = 0.15\pi`). The stationary points
    inside the bounds are found numerically (to rounding).

    >>> import numpy as np, fastdescent as fd
    >>> f = fd.problems.XCos()            # c = pi
    >>> f.minima.round(4)                 # a local minimum and the global one on [-1, 2]
    array([[-0.2739],
           [ 1.0904]])
    >>> round(f.value(f.global_minimum), 4)
    -1.0467
    """

    dim = 1
    formula = "x cos(c x)"

    def __init__(self, c: float = math.pi, *, start=None, bounds=None):
        self.c = check_range(c, "c", 0, low_open=True)
        low, high = -math.pi / self.c, 2 * math.pi / self.c
        super().__init__(start=start, bounds=bounds, default_start=[1.5 * math.pi / self.c],
                         default_bounds=[[low, high]])
        minima, maxima = _stationary_points_1d(self._gradient_at, self._hessian_at,
                                               *self.bounds[0])
        self.minima, self.maxima = _points(minima, 1), _points(maxima, 1)

    def _gradient_at(self, x):
        c = self.c
        return np.cos(c * x) - c * x * np.sin(c * x)

    def _hessian_at(self, x):
        c = self.c
        return -2 * c * np.sin(c * x) - c * c * x * np.cos(c * x)

    def _value(self, x):
        return x[0] * np.cos(self.c * x[0])

    def _gradient(self, x):
        return self._gradient_at(x)

    def _hessian(self, x):
        return self._hessian_at(x).reshape(1, 1)

    def _args(self):
        return f"c={self.c!r}"


class Quadratic(Problem):
    r"""A diagonal quadratic :math:`f(x) = \sum_i a_i x_i^2`: ``Quadratic([2.0])`` is
    :math:`2x^2`, ``Quadratic([0.1, 2.0])`` the ill-conditioned :math:`0.1 x_1^2 + 2 x_2^2`
    (condition number 20) of seed 004's momentum section.

    .. math::

        \nabla f = 2 a \odot x, \qquad \nabla^2 f = 2 \operatorname{diag}(a)

    Gradient descent with learning rate :math:`\eta` multiplies :math:`x_i` by
    :math:`1 - 2\eta a_i` each step: it converges when :math:`\eta < 1/\max_i a_i` and
    diverges beyond. The origin is the minimum when every :math:`a_i \ge 0`, a maximum when
    every :math:`a_i < 0`, a saddle point otherwise. Default start: ones; default bounds
    :math:`\pm 1.25 \max_i |x^{start}_i|` per coordinate.

    >>> import numpy as np, fastdescent as fd
    >>> f = fd.problems.Quadratic([2.0])
    >>> f.fun_grad(np.array([1.0]))
    (2.0, array([4.]))
    """

    formula = "sum_i a_i x_i^2"

    def __init__(self, coefficients, *, start=None, bounds=None):
        coefficients = np.atleast_1d(np.asarray(coefficients))
        if coefficients.ndim != 1 or coefficients.size == 0:
            raise ValueError(f"coefficients must be a non-empty 1-D sequence, "
                             f"got shape {coefficients.shape}")
        self.coefficients = _frozen([check_real(a, f"coefficients[{i}]")
                                     for i, a in enumerate(coefficients.tolist())])
        self.dim = n = coefficients.size
        a = self.coefficients
        origin = np.zeros((1, n))
        kind = ("minima" if np.all(a >= 0) else "maxima" if np.all(a < 0) else "saddle_points")
        try:
            radius = 1.25 * max(1.0, float(np.max(np.abs(np.ones(n) if start is None
                                                         else np.asarray(start, float)))))
        except (TypeError, ValueError):
            radius = 1.25  # a bad start is reported by the check below
        super().__init__(start=start, bounds=bounds, default_start=np.ones(n),
                         default_bounds=[[-radius, radius]] * n, **{kind: origin})

    def _value(self, x):
        a = self.coefficients.astype(x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
        return np.sum(a * x * x, axis=0)

    def _gradient(self, x):
        return 2 * self.coefficients.astype(x.dtype) * x

    def _hessian(self, x):
        return np.diag(2 * self.coefficients).astype(x.dtype)

    def _args(self):
        return f"{self.coefficients.tolist()!r}"


class Saddle(Quadratic):
    r""":math:`f(x, y) = x^2 - y^2`, seed 004's saddle point at the origin: a minimum along
    :math:`x`, a maximum along :math:`y`, unbounded below.

    From the default start :math:`(1, 0)` gradient descent never leaves the line
    :math:`y = 0` (the :math:`y` gradient :math:`-2y` stays 0) and stalls at the saddle.

    >>> import numpy as np, fastdescent as fd
    >>> f = fd.problems.Saddle()
    >>> f.saddle_points, f.minima.shape
    (array([[0., 0.]]), (0, 2))
    >>> f.gradient(np.array([1.0, 0.5]))
    array([ 2., -1.])
    """

    formula = "x^2 - y^2"

    def __init__(self, *, start=None, bounds=None):
        super().__init__([1.0, -1.0], start=[1.0, 0.0] if start is None else start,
                         bounds=[[-1.0, 1.0], [-1.0, 1.0]] if bounds is None else bounds)

    def _args(self):
        return ""


class Tanh(Problem):
    r""":math:`f(x) = \tanh x`, seed 004's vanishing gradient: from :math:`x = 4`,
    :math:`f'(4) = 1 - \tanh^2 4 \approx 0.0013` and gradient descent hardly moves.

    .. math::

        f'(x) = 1 - \tanh^2 x, \qquad f''(x) = -2 \tanh x\, (1 - \tanh^2 x)

    No minimum (:math:`f \to -1` as :math:`x \to -\infty`). Default start 4, bounds
    :math:`[-5, 5]`.

    >>> import numpy as np, fastdescent as fd
    >>> f = fd.problems.Tanh()
    >>> f.gradient(f.start).round(4)
    array([0.0013])
    """

    dim = 1
    formula = "tanh(x)"

    def __init__(self, *, start=None, bounds=None):
        super().__init__(start=start, bounds=bounds, default_start=[4.0],
                         default_bounds=[[-5.0, 5.0]])

    def _value(self, x):
        return np.tanh(x[0])

    def _gradient(self, x):
        t = np.tanh(x)
        return 1 - t * t

    def _hessian(self, x):
        t = np.tanh(x)
        return (-2 * t * (1 - t * t)).reshape(1, 1)


class Cosh(Problem):
    r""":math:`f(x) = \cosh(c x)`, seed 004's example for Newton's method (:math:`c = 0.5`,
    from :math:`x = 10`): convex, minimum 1 at 0.

    .. math::

        f'(x) = c \sinh(c x), \qquad f''(x) = c^2 \cosh(c x)

    Newton's step is :math:`x \leftarrow x - \tanh(c x)/c`. Default start :math:`5/c`,
    bounds :math:`[-5/c, 5/c]`.

    >>> import numpy as np, fastdescent as fd
    >>> f = fd.problems.Cosh()
    >>> f.start, f.minima
    (array([10.]), array([[0.]]))
    """

    dim = 1
    formula = "cosh(c x)"

    def __init__(self, c: float = 0.5, *, start=None, bounds=None):
        self.c = check_range(c, "c", 0, low_open=True)
        r = 5.0 / self.c
        super().__init__(start=start, bounds=bounds, default_start=[r],
                         default_bounds=[[-r, r]], minima=[0.0])

    def _value(self, x):
        return np.cosh(self.c * x[0])

    def _gradient(self, x):
        return self.c * np.sinh(self.c * x)

    def _hessian(self, x):
        return (self.c * self.c * np.cosh(self.c * x)).reshape(1, 1)

    def _args(self):
        return f"c={self.c!r}"


class Rosenbrock(Problem):
    r"""Rosenbrock's banana valley :math:`f(x, y) = (a - x)^2 + b (y - x^2)^2`, minimum 0 at
    :math:`(a, a^2)` at the end of a long curved flat valley.

    .. math::

        \nabla f = \begin{pmatrix} -2(a - x) - 4 b x (y - x^2) \\ 2 b (y - x^2)
                   \end{pmatrix}, \qquad
        \nabla^2 f = \begin{pmatrix} 2 - 4 b (y - x^2) + 8 b x^2 & -4 b x \\
                     -4 b x & 2 b \end{pmatrix}

    Default start :math:`(-1.2, 1)` (the classic one), bounds
    :math:`[-|a| - 1, |a| + 1] \times [-1, a^2 + 2]` (:math:`[-2, 2] \times [-1, 3]` at
    :math:`a = 1`).

    >>> import numpy as np, fastdescent as fd
    >>> f = fd.problems.Rosenbrock()
    >>> f.value(f.start)
    24.199999999999996
    """

    dim = 2
    formula = "(a - x)^2 + b (y - x^2)^2"

    def __init__(self, a: float = 1.0, b: float = 100.0, *, start=None, bounds=None):
        self.a = check_real(a, "a")
        self.b = check_range(b, "b", 0, low_open=True)
        super().__init__(start=start, bounds=bounds, default_start=[-1.2, 1.0],
                         default_bounds=[[-abs(self.a) - 1, abs(self.a) + 1],
                                         [-1.0, self.a * self.a + 2]],
                         minima=[[self.a, self.a * self.a]])

    def _value(self, x):
        u, v = x[0], x[1]
        return (self.a - u) ** 2 + self.b * (v - u * u) ** 2

    def _gradient(self, x):
        u, v = x
        a, b = self.a, self.b
        return np.array([2 * (u - a) - 4 * b * u * (v - u * u), 2 * b * (v - u * u)],
                        dtype=x.dtype)

    def _hessian(self, x):
        u, v = x
        b = self.b
        return np.array([[2 - 4 * b * (v - u * u) + 8 * b * u * u, -4 * b * u],
                         [-4 * b * u, 2 * b]], dtype=x.dtype)

    def _args(self):
        return f"a={self.a!r}, b={self.b!r}"


class Beale(Problem):
    r"""Beale's function :math:`f(x, y) = \sum_{i=1}^{3} u_i^2`,
    :math:`u_i = c_i - x + x y^i`, :math:`c = (1.5, 2.25, 2.625)`: minimum 0 at
    :math:`(3, 0.5)`, flat plateaus and sharp ridges near the corners.

    .. math::

        \nabla f = 2 \sum_i u_i \nabla u_i, \quad
        \nabla u_i = \begin{pmatrix} y^i - 1 \\ i x y^{i-1} \end{pmatrix}, \qquad
        \nabla^2 f = 2 \sum_i \left(\nabla u_i \nabla u_i^\top + u_i \nabla^2 u_i\right),
        \quad \nabla^2 u_i = \begin{pmatrix} 0 & i y^{i-1} \\ i y^{i-1} & i (i-1) x y^{i-2}
        \end{pmatrix}

    Saddle points at :math:`(0, 1)` and near :math:`(0.1005, -2.6445)`. Default start
    :math:`(1, 1.5)`, bounds :math:`[-4.5, 4.5]^2`.

    >>> import numpy as np, fastdescent as fd
    >>> f = fd.problems.Beale()
    >>> f.value(np.array([3.0, 0.5]))
    0.0
    """

    dim = 2
    formula = "(1.5 - x + x y)^2 + (2.25 - x + x y^2)^2 + (2.625 - x + x y^3)^2"
    _C = (1.5, 2.25, 2.625)

    def __init__(self, *, start=None, bounds=None):
        super().__init__(start=start, bounds=bounds, default_start=[1.0, 1.5],
                         default_bounds=[[-4.5, 4.5], [-4.5, 4.5]], minima=[[3.0, 0.5]],
                         saddle_points=[[0.0, 1.0],
                                        [0.10053793732415836, -2.6445135850231250]])

    def _value(self, x):
        u, v = x[0], x[1]
        return sum((c - u + u * v ** i) ** 2 for i, c in enumerate(self._C, start=1))

    def _gradient(self, x):
        u, v = x
        g = np.zeros(2, dtype=x.dtype)
        for i, c in enumerate(self._C, start=1):
            r = c - u + u * v ** i
            g += 2 * r * np.array([v ** i - 1, i * u * v ** (i - 1)], dtype=x.dtype)
        return g

    def _hessian(self, x):
        u, v = x
        h = np.zeros((2, 2), dtype=x.dtype)
        for i, c in enumerate(self._C, start=1):
            r = c - u + u * v ** i
            d = np.array([v ** i - 1, i * u * v ** (i - 1)], dtype=x.dtype)
            cross = i * v ** (i - 1)
            yy = i * (i - 1) * u * v ** (i - 2) if i >= 2 else 0.0
            h += 2 * (np.outer(d, d) + r * np.array([[0.0, cross], [cross, yy]], dtype=x.dtype))
        return h


class Himmelblau(Problem):
    r"""Himmelblau's function :math:`f(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2`: four
    minima of value 0, one local maximum and four saddle points.

    .. math::

        \nabla f = \begin{pmatrix} 4 x A + 2 B \\ 2 A + 4 y B \end{pmatrix}, \qquad
        \nabla^2 f = \begin{pmatrix} 12 x^2 + 4 y - 42 & 4 (x + y) \\
                     4 (x + y) & 4 x + 12 y^2 - 26 \end{pmatrix}

    with :math:`A = x^2 + y - 11`, :math:`B = x + y^2 - 7`. Default start :math:`(0, 0)`,
    bounds :math:`[-5, 5]^2`. Which minimum a descent reaches depends on where it starts.

    >>> import numpy as np, fastdescent as fd
    >>> f = fd.problems.Himmelblau()
    >>> len(f.minima), len(f.saddle_points), len(f.maxima)
    (4, 4, 1)
    """

    dim = 2
    formula = "(x^2 + y - 11)^2 + (x + y^2 - 7)^2"

    def __init__(self, *, start=None, bounds=None):
        super().__init__(
            start=start, bounds=bounds, default_start=[0.0, 0.0],
            default_bounds=[[-5.0, 5.0], [-5.0, 5.0]],
            minima=[[3.0, 2.0], [-2.8051180869527449, 3.1313125182505730],
                    [-3.7793102533777469, -3.2831859912861694],
                    [3.5844283403304917, -1.8481265269644036]],
            saddle_points=[[-3.0730257507643896, -0.081353044287967512],
                           [-0.12796134673068007, -1.9537149802445764],
                           [0.086677504555396352, 2.8842547011747761],
                           [3.3851541836070209, 0.073851879837749288]],
            maxima=[[-0.27084459066734761, -0.92303855647998146]])

    def _value(self, x):
        u, v = x[0], x[1]
        return (u * u + v - 11) ** 2 + (u + v * v - 7) ** 2

    def _gradient(self, x):
        u, v = x
        a, b = u * u + v - 11, u + v * v - 7
        return np.array([4 * u * a + 2 * b, 2 * a + 4 * v * b], dtype=x.dtype)

    def _hessian(self, x):
        u, v = x
        return np.array([[12 * u * u + 4 * v - 42, 4 * (u + v)],
                         [4 * (u + v), 4 * u + 12 * v * v - 26]], dtype=x.dtype)


def catalog() -> dict[str, Problem]:
    """The seeds' problems by name, as the seeds use them (a new dict of new objects).

    >>> import fastdescent as fd
    >>> sorted(fd.problems.catalog())        # doctest: +NORMALIZE_WHITESPACE
    ['beale', 'cosh', 'himmelblau', 'ill_conditioned', 'rosenbrock', 'saddle', 'tanh',
     'two_x_squared', 'x_cos_nonconvex', 'x_cos_pi_x']
    >>> fd.problems.catalog()["ill_conditioned"]
    Quadratic([0.1, 2.0])
    """
    return {
        "x_cos_pi_x": XCos(math.pi),
        "x_cos_nonconvex": XCos(0.15 * math.pi),
        "saddle": Saddle(),
        "tanh": Tanh(),
        "cosh": Cosh(0.5),
        "two_x_squared": Quadratic([2.0]),
        "ill_conditioned": Quadratic([0.1, 2.0], start=[-5.0, -2.0]),
        "rosenbrock": Rosenbrock(),
        "beale": Beale(),
        "himmelblau": Himmelblau(),
    }
