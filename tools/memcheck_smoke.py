"""A short tour of everything fastdescent's extension does, for valgrind memcheck
(tools/memcheck.sh): every optimizer and option flag in float32 and float64, one tensor and
many, below and above the threading grain, refused calls (C++ exceptions), the gradient
kernels, the native training loops and a checkpoint round trip."""

from __future__ import annotations

import itertools
import os
import sys
import tempfile

import numpy as np

import fastdescent as fd

OPTIONS = {
    fd.SGD: dict(momentum=(0.0, 0.9), nesterov=(False, True), weight_decay=(0.0, 0.1),
                 maximize=(False, True)),
    fd.Adagrad: dict(lr_decay=(0.0, 0.1), weight_decay=(0.0, 0.1), maximize=(False, True)),
    fd.RMSprop: dict(momentum=(0.0, 0.9), centered=(False, True), weight_decay=(0.0, 0.1),
                     maximize=(False, True)),
    fd.Adam: dict(amsgrad=(False, True), weight_decay=(0.0, 0.1), maximize=(False, True)),
    fd.AdamW: dict(amsgrad=(False, True), maximize=(False, True)),
}
SIZES = [(0,), (), (7,), (3, 5), (140_000,)]  # 140,000: above the threading grain


def combinations(cls):
    keys = list(OPTIONS[cls])
    for values in itertools.product(*(OPTIONS[cls][k] for k in keys)):
        options = dict(zip(keys, values))
        if options.get("nesterov") and options.get("momentum") == 0:
            continue
        yield options


def main() -> int:
    rng = np.random.default_rng(0)
    steps = 0
    for cls, dtype in itertools.product(OPTIONS, (np.float32, np.float64)):
        for options in combinations(cls):
            params = [rng.standard_normal(s).astype(dtype) for s in SIZES]
            opt = cls(params, lr=lambda t: 0.01 / t, backend="cpp", **options)
            for t in range(3):
                grads = [rng.standard_normal(p.shape).astype(dtype) for p in params]
                grads[t % len(grads)] = None
                opt.step(grads, check_finite=bool(t % 2))
                steps += 1
            bad = [np.ones(p.shape, dtype) for p in params]
            bad[3] = params[3]  # a gradient aliasing its param: refused in C++
            for refused in (bad, bad[:-1], [b.astype(np.float16) for b in bad]):
                try:
                    opt.step(refused)
                except (TypeError, ValueError):
                    pass
                else:
                    raise AssertionError("a bad step was not refused")
            nan = [np.ones(p.shape, dtype) for p in params]
            nan[4][-1] = np.nan
            try:
                opt.step(nan, check_finite=True)
            except ValueError:
                pass
            else:
                raise AssertionError("check_finite missed a NaN")
    many = [rng.standard_normal(100).astype(np.float32) for _ in range(2000)]
    opt = fd.Adam(many, backend="cpp")
    for _ in range(3):
        opt.step([np.ones_like(p) for p in many])
        steps += 1

    acc = np.zeros(1000)
    fd.accumulate(acc, np.ones(1000), 0.5, backend="cpp")
    fd.row_mean(rng.standard_normal((64, 1000)), backend="cpp")
    grads = [rng.standard_normal(140_000).astype(np.float32), rng.standard_normal(10)]
    fd.clip_by_global_norm(grads, 1.0, backend="cpp")
    fd.clip_by_value(grads, -0.1, 0.1, backend="cpp")
    ema = fd.EMA([np.zeros(10)], 0.9, backend="cpp")
    ema.update()

    X = rng.standard_normal((300, 5))
    y = X @ np.arange(5.0) + 1
    for optimizer, batch in ((fd.SGD, 16), (fd.Adam, None), (fd.RMSprop, 1)):
        model = fd.models.LinearRegression(optimizer=optimizer, epochs=3, batch_size=batch,
                                           random_state=0, backend="cpp").fit(X, y)
        assert model.native_
        fd.models.LogisticRegression(optimizer=optimizer, epochs=3, batch_size=batch,
                                     random_state=0, backend="cpp").fit(X, y > 1)

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "ckpt.npz")
        fd.save(path, opt)
        fd.load(path, opt)
    print(f"memcheck smoke: {steps} steps over {len(OPTIONS)} optimizers, done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
